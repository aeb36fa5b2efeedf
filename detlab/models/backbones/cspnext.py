"""CSPNeXt, RTMDet's backbone (Lyu et al., "RTMDet: An Empirical Study of
Designing Real-Time Object Detectors", 2022), with MMDetection's config keys
and state_dict keys (``stem.{0,1,2}``, ``stage{i}.{0: downsampling conv,
[1: SPP,] last: CSPLayer}``)."""
import math
from typing import List, Optional, Sequence, Tuple

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from torch import Tensor, nn

from detlab.registry import MODELS
from ..layers.csp_layer import CSP_NORM_CFG, CSPLayer, SPPBottleneck
from .base_backbone import FreezableBackbone

#: ``frozen_stages=-1`` freezes nothing; 0 freezes the stem; k also stage1..stage{k}.
NOT_FROZEN = -1


@MODELS.register_module()
class CSPNeXt(FreezableBackbone):
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
        num_layers = len(arch_setting) + 1
        if not set(out_indices) <= set(range(num_layers)):
            raise ValueError(f'CSPNeXt: out_indices={tuple(out_indices)} must lie in '
                             f'0..{num_layers - 1} (0 = stem, i = stage i) for arch={arch!r}')
        if frozen_stages not in range(NOT_FROZEN, num_layers):
            raise ValueError(f'CSPNeXt: frozen_stages={frozen_stages} must be in '
                             f'-1..{num_layers - 1}')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_depthwise = use_depthwise
        self.norm_eval = norm_eval
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        stem_channels = int(arch_setting[0][0] * widen_factor)
        stem_half = int(arch_setting[0][0] * widen_factor // 2)
        stem_cfgs = dict(padding=1, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = nn.Sequential(
            ConvModule(3, stem_half, 3, stride=2, **stem_cfgs),
            ConvModule(stem_half, stem_half, 3, stride=1, **stem_cfgs),
            ConvModule(stem_half, stem_channels, 3, stride=1, **stem_cfgs))
        self.layers = ['stem']
        layer_cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        for i, (in_channels, out_channels, num_blocks, add_identity,
                use_spp) in enumerate(arch_setting):
            in_channels = int(in_channels * widen_factor)
            out_channels = int(out_channels * widen_factor)
            num_blocks = max(round(num_blocks * deepen_factor), 1)
            stage = [conv(in_channels, out_channels, 3, stride=2, padding=1, **layer_cfgs)]
            if use_spp:
                stage.append(SPPBottleneck(out_channels, out_channels,
                                           kernel_sizes=spp_kernel_sizes, **layer_cfgs))
            stage.append(CSPLayer(out_channels, out_channels, num_blocks=num_blocks,
                                  add_identity=add_identity, use_depthwise=use_depthwise,
                                  use_cspnext_block=True, expand_ratio=expand_ratio,
                                  channel_attention=channel_attention, **layer_cfgs))
            self.add_module(f'stage{i + 1}', nn.Sequential(*stage))
            self.layers.append(f'stage{i + 1}')

    def _freeze_stages(self) -> None:
        for name in self.layers[:self.frozen_stages + 1]:
            layer = getattr(self, name)
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the outputs of the ``out_indices`` layers."""
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
