"""CSPNeXtPAFPN, RTMDet's neck: a path aggregation network (top-down, then
bottom-up) whose fusion blocks are CSP layers of CSPNeXt blocks, with
MMDetection's config keys and state_dict keys."""
import math
from typing import Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from ..layers.csp_layer import CSP_NORM_CFG, CSPLayer


@MODELS.register_module()
class CSPNeXtPAFPN(BaseModule):
    """Path aggregation with CSPNeXt blocks.

    Top-down: the coarsest map is reduced to the next level's channels
    (``reduce_layers``), upsampled, concatenated with that level and fused
    (``top_down_blocks``). Bottom-up: each map is downsampled by a stride-2
    conv (``downsamples``), concatenated with the next level's top-down map and
    fused (``bottom_up_blocks``). Every level then goes through a 3x3
    ``out_convs`` conv to ``out_channels``.

    Args:
        in_channels (Sequence[int]): Channels of each input level (fine to coarse).
        out_channels (int): Channels of every output level.
        num_csp_blocks (int): Blocks per CSP layer.
        use_depthwise (bool): Depthwise-separable downsampling and output convs.
        expand_ratio (float): Branch width of the CSP layers.
        upsample_cfg (dict): ``nn.Upsample`` arguments.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict): Kaiming-uniform convs, as MMDetection.
    """

    #: CSPNeXt blocks (else Darknet bottlenecks) in the fusion CSP layers.
    use_cspnext_block = True
    #: Kernel of the output convs (depthwise-separable with ``use_depthwise`` when 3).
    out_kernel_size = 3

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: int,
                 num_csp_blocks: int = 3,
                 use_depthwise: bool = False,
                 expand_ratio: float = 0.5,
                 upsample_cfg: dict = dict(scale_factor=2, mode='nearest'),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'),
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.out_channels = out_channels
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        layer_cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        csp_cfgs = dict(num_blocks=num_csp_blocks, add_identity=False,
                        use_depthwise=use_depthwise,
                        use_cspnext_block=self.use_cspnext_block,
                        expand_ratio=expand_ratio, **layer_cfgs)
        self.upsample = nn.Upsample(**upsample_cfg)
        self.reduce_layers = nn.ModuleList()
        self.top_down_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1, 0, -1):
            self.reduce_layers.append(
                ConvModule(in_channels[idx], in_channels[idx - 1], 1, **layer_cfgs))
            self.top_down_blocks.append(
                CSPLayer(in_channels[idx - 1] * 2, in_channels[idx - 1], **csp_cfgs))
        self.downsamples = nn.ModuleList()
        self.bottom_up_blocks = nn.ModuleList()
        for idx in range(len(in_channels) - 1):
            self.downsamples.append(
                conv(in_channels[idx], in_channels[idx], 3, stride=2, padding=1, **layer_cfgs))
            self.bottom_up_blocks.append(
                CSPLayer(in_channels[idx] * 2, in_channels[idx + 1], **csp_cfgs))
        out_conv = conv if self.out_kernel_size > 1 else ConvModule
        self.out_convs = nn.ModuleList(
            out_conv(channels, out_channels, self.out_kernel_size,
                     padding=self.out_kernel_size // 2, **layer_cfgs)
            for channels in in_channels)

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Feature maps fine to coarse -> ``out_channels`` maps of the same sizes."""
        if len(inputs) != len(self.in_channels):
            raise ValueError(f'{type(self).__name__}: got {len(inputs)} feature maps for '
                             f'in_channels={list(self.in_channels)}')
        num_levels = len(self.in_channels)
        inner_outs = [inputs[-1]]
        for step, idx in enumerate(range(num_levels - 1, 0, -1)):
            feat_high = self.reduce_layers[step](inner_outs[0])
            inner_outs[0] = feat_high
            inner_out = self.top_down_blocks[step](
                torch.cat([self.upsample(feat_high), inputs[idx - 1]], 1))
            inner_outs.insert(0, inner_out)
        outs = [inner_outs[0]]
        for idx in range(num_levels - 1):
            downsampled = self.downsamples[idx](outs[-1])
            outs.append(self.bottom_up_blocks[idx](torch.cat([downsampled, inner_outs[idx + 1]],
                                                             1)))
        return tuple(conv(out) for conv, out in zip(self.out_convs, outs))
