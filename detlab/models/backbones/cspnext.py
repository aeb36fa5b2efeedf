"""CSPNeXt, RTMDet's backbone (Lyu et al., "RTMDet: An Empirical Study of
Designing Real-Time Object Detectors", 2022), with MMDetection's config keys
and state_dict keys (``stem.{0,1,2}``, ``stage{i}.{0: downsampling conv,
[1: SPP,] last: CSPLayer}``)."""
import math
from typing import List, Optional, Sequence

from mmcv.cnn import ConvModule
from torch import nn

from detlab.registry import MODELS
from ..layers.csp_layer import CSP_NORM_CFG
from .base_backbone import NOT_FROZEN, CSPStagesBackbone


@MODELS.register_module()
class CSPNeXt(CSPStagesBackbone):
    """CSPNeXt backbone.

    Args:
        arch (str): ``'P5'`` (4 stages, strides up to 32) or ``'P6'`` (5 stages, to 64).
        deepen_factor (float): Blocks per CSP layer = round(blocks * factor), at least 1.
        widen_factor (float): Channels of every layer times this.
        out_indices (Sequence[int]): Outputs of these layers (0 = stem, i = stage i).
        frozen_stages (int): -1 freezes nothing, k the stem and stage1..stage{k}.
        use_depthwise (bool): Depthwise-separable convs.
        expand_ratio (float): Branch width of the CSP layers.
        arch_ovewrite (list, optional): Stage settings replacing ``arch``'s, rows
            of [in_channels, out_channels, num_blocks, add_identity, use_spp]
            (MMDetection's spelling of the key).
        spp_kernel_sizes (Sequence[int]): Max-pool kernels of the SPP block.
        channel_attention (bool): Channel attention in every CSP layer.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        norm_eval (bool): Keep BatchNorm layers in eval mode during training.
        init_cfg (dict): Kaiming-uniform convs, as MMDetection.
    """

    # in_channels, out_channels, num_blocks, add_identity, use_spp
    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 6, True, False],
               [256, 512, 6, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]]
    }

    def __init__(self,
                 arch: str = 'P5',
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = NOT_FROZEN,
                 use_depthwise: bool = False,
                 expand_ratio: float = 0.5,
                 arch_ovewrite: Optional[List[list]] = None,
                 spp_kernel_sizes: Sequence[int] = (5, 9, 13),
                 channel_attention: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='SiLU'),
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings and not arch_ovewrite:
            raise ValueError(f"CSPNeXt: arch={arch!r} is not one of {sorted(self.arch_settings)}")
        arch_setting = arch_ovewrite or self.arch_settings[arch]
        self._check_arch(arch, arch_setting, out_indices, frozen_stages)
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_depthwise = use_depthwise
        self.norm_eval = norm_eval
        stem_channels = int(arch_setting[0][0] * widen_factor)
        stem_half = int(arch_setting[0][0] * widen_factor // 2)
        stem_cfgs = dict(padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = nn.Sequential(
            ConvModule(3, stem_half, 3, stride=2, **stem_cfgs),
            ConvModule(stem_half, stem_half, 3, stride=1, **stem_cfgs),
            ConvModule(stem_half, stem_channels, 3, stride=1, **stem_cfgs))
        self._add_stages(arch_setting, deepen_factor, widen_factor, use_depthwise,
                         spp_kernel_sizes,
                         dict(use_cspnext_block=True, expand_ratio=expand_ratio,
                              channel_attention=channel_attention),
                         dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg))
