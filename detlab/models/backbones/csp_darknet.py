"""CSPDarknet, the backbone of YOLOv5 and YOLOX (Ge et al., "YOLOX: Exceeding
YOLO Series in 2021"), with MMDetection's config keys and state_dict keys
(``stem.conv``, ``stage{i}.{0: downsampling conv, [1: SPP,] last: CSPLayer}``)."""
import math
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import ConvModule
from torch import Tensor, nn

from detlab.registry import MODELS
from ..layers.csp_layer import CSP_NORM_CFG
from .base_backbone import NOT_FROZEN, CSPStagesBackbone


class Focus(nn.Module):
    """Space-to-depth stem: every 2x2 pixel block goes into channels (top-left,
    bottom-left, top-right, bottom-right, as MMDetection), then a conv.

    Args:
        in_channels (int): Input channels (times 4 after the rearrangement).
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the conv (padding keeps the size).
        stride (int): Stride of the conv.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1,
                 stride: int = 1, conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG, act_cfg: dict = dict(type='Swish')) -> None:
        super().__init__()
        self.conv = ConvModule(in_channels * 4, out_channels, kernel_size, stride,
                               padding=(kernel_size - 1) // 2, conv_cfg=conv_cfg,
                               norm_cfg=norm_cfg, act_cfg=act_cfg)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, out_channels, H / 2, W / 2) for stride 1."""
        return self.conv(torch.cat((x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2],
                                    x[..., 1::2, 1::2]), dim=1))


@MODELS.register_module()
class CSPDarknet(CSPStagesBackbone):
    """CSP-Darknet backbone.

    Args:
        arch (str): ``'P5'`` (4 stages, strides up to 32) or ``'P6'`` (5 stages, to 64).
        deepen_factor (float): Blocks per CSP layer = round(blocks * factor), at least 1.
        widen_factor (float): Channels of every layer times this.
        out_indices (Sequence[int]): Outputs of these layers (0 = stem, i = stage i).
        frozen_stages (int): -1 freezes nothing, k the stem and stage1..stage{k}.
        use_depthwise (bool): Depthwise-separable convs.
        arch_ovewrite (list, optional): Stage settings replacing ``arch``'s, rows
            of [in_channels, out_channels, num_blocks, add_identity, use_spp]
            (MMDetection's spelling of the key).
        spp_kernal_sizes (Sequence[int]): Max-pool kernels of the SPP block
            (MMDetection's spelling of the key).
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        norm_eval (bool): Keep BatchNorm layers in eval mode during training.
        init_cfg (dict): Kaiming-uniform convs, as MMDetection.
    """

    # in_channels, out_channels, num_blocks, add_identity, use_spp
    arch_settings = {
        'P5': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 1024, 3, False, True]],
        'P6': [[64, 128, 3, True, False], [128, 256, 9, True, False],
               [256, 512, 9, True, False], [512, 768, 3, True, False],
               [768, 1024, 3, False, True]]
    }

    def __init__(self,
                 arch: str = 'P5',
                 deepen_factor: float = 1.0,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (2, 3, 4),
                 frozen_stages: int = NOT_FROZEN,
                 use_depthwise: bool = False,
                 arch_ovewrite: Optional[List[list]] = None,
                 spp_kernal_sizes: Sequence[int] = (5, 9, 13),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'),
                 norm_eval: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if arch not in self.arch_settings:
            raise ValueError(f'CSPDarknet: arch={arch!r} is not one of '
                             f'{sorted(self.arch_settings)}')
        arch_setting = arch_ovewrite or self.arch_settings[arch]
        self._check_arch(arch, arch_setting, out_indices, frozen_stages)
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_depthwise = use_depthwise
        self.norm_eval = norm_eval
        layer_cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.stem = Focus(3, int(arch_setting[0][0] * widen_factor), kernel_size=3,
                          **layer_cfgs)
        self._add_stages(arch_setting, deepen_factor, widen_factor, use_depthwise,
                         spp_kernal_sizes, dict(), layer_cfgs)
