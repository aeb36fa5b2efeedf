"""Cross Stage Partial blocks of CSPNeXt (RTMDet) and CSPDarknet (YOLOX).

State_dict keys follow MMDetection: ``main_conv``, ``short_conv``,
``final_conv``, ``blocks.{i}.conv1``/``conv2`` and ``attention.fc``; the SPP
block has ``conv1``, ``poolings`` (no weights) and ``conv2``.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from .attention import ChannelAttention

#: MMDetection's default norm of the CSP family: BN with YOLO's momentum and eps.
CSP_NORM_CFG = dict(type='BN', momentum=0.03, eps=0.001)


class DarknetBottleneck(BaseModule):
    """1x1 conv to ``out_channels * expansion`` channels, then a 3x3 conv back,
    plus the input when ``add_identity`` and the channel counts agree.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expansion (float): Hidden channels as a fraction of ``out_channels``.
        add_identity (bool): Residual connection (only when in == out).
        use_depthwise (bool): Depthwise-separable 3x3 conv.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden_channels = int(out_channels * expansion)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.conv1 = ConvModule(in_channels, hidden_channels, 1, conv_cfg=conv_cfg,
                                norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = conv(hidden_channels, out_channels, 3, stride=1, padding=1,
                          conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPNeXtBlock(BaseModule):
    """CSPNeXt's bottleneck: a 3x3 conv, then a large-kernel (default 5x5)
    depthwise-separable conv, plus the input when ``add_identity`` and the
    channel counts agree.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expansion (float): Hidden channels as a fraction of ``out_channels``.
        add_identity (bool): Residual connection (only when in == out).
        use_depthwise (bool): Depthwise-separable first conv too.
        kernel_size (int): Kernel of the depthwise-separable conv.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs. As in MMDetection,
            ``conv_cfg`` reaches only the second conv.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int, expansion: float = 0.5,
                 add_identity: bool = True, use_depthwise: bool = False, kernel_size: int = 5,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='SiLU'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        hidden_channels = int(out_channels * expansion)
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.conv1 = conv(in_channels, hidden_channels, 3, stride=1, padding=1,
                          norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv2 = DepthwiseSeparableConvModule(
            hidden_channels, out_channels, kernel_size, stride=1, padding=kernel_size // 2,
            conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.add_identity = add_identity and in_channels == out_channels

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class CSPLayer(BaseModule):
    """Cross Stage Partial layer: the input goes through two 1x1 convs; one
    branch through ``num_blocks`` blocks; both concatenated, optionally
    reweighted by :class:`ChannelAttention`, and fused by a 1x1 conv.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        expand_ratio (float): Channels of each branch as a fraction of
            ``out_channels``.
        num_blocks (int): Blocks in the main branch.
        add_identity (bool): Residual connection inside the blocks.
        use_depthwise (bool): Depthwise-separable convs in the blocks.
        use_cspnext_block (bool): :class:`CSPNeXtBlock` (RTMDet) instead of
            :class:`DarknetBottleneck` (YOLOX).
        channel_attention (bool): Reweight the concatenated branches.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int, expand_ratio: float = 0.5,
                 num_blocks: int = 1, add_identity: bool = True, use_depthwise: bool = False,
                 use_cspnext_block: bool = False, channel_attention: bool = False,
                 conv_cfg: Optional[dict] = None, norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'), init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        block = CSPNeXtBlock if use_cspnext_block else DarknetBottleneck
        mid_channels = int(out_channels * expand_ratio)
        self.channel_attention = channel_attention
        layer_cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.main_conv = ConvModule(in_channels, mid_channels, 1, **layer_cfgs)
        self.short_conv = ConvModule(in_channels, mid_channels, 1, **layer_cfgs)
        self.final_conv = ConvModule(2 * mid_channels, out_channels, 1, **layer_cfgs)
        self.blocks = nn.Sequential(*[
            block(mid_channels, mid_channels, 1.0, add_identity, use_depthwise, **layer_cfgs)
            for _ in range(num_blocks)])
        if channel_attention:
            self.attention = ChannelAttention(2 * mid_channels)

    def forward(self, x: Tensor) -> Tensor:
        x_short = self.short_conv(x)
        x_main = self.blocks(self.main_conv(x))
        x_final = torch.cat((x_main, x_short), dim=1)
        if self.channel_attention:
            x_final = self.attention(x_final)
        return self.final_conv(x_final)


class SPPBottleneck(BaseModule):
    """Spatial pyramid pooling (YOLOv3-SPP): a 1x1 conv to half the channels,
    max pools of several kernel sizes (stride 1) concatenated with their input,
    and a 1x1 conv to ``out_channels``.

    With odd, increasing kernel sizes each pool after the first is computed
    from the previous one (a ``k2`` max pool is a ``k2 - k1 + 1`` max pool of
    the ``k1`` max pool, stride 1, borders padded with -inf): the same values as
    pooling the input directly, for fewer comparisons ((5, 9, 13): three 5x5
    pools instead of 5x5, 9x9 and 13x13).

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_sizes (tuple[int]): Max-pool kernels.
        conv_cfg, norm_cfg, act_cfg (dict): Layer configs.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_sizes: Sequence[int] = (5, 9, 13), conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG, act_cfg: dict = dict(type='Swish'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        mid_channels = in_channels // 2
        layer_cfgs = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, mid_channels, 1, stride=1, **layer_cfgs)
        self.poolings = nn.ModuleList(
            nn.MaxPool2d(kernel_size=size, stride=1, padding=size // 2) for size in kernel_sizes)
        sizes = [1] + list(kernel_sizes)
        self.cascade = all(size % 2 == 1 for size in sizes) and all(
            small < large for small, large in zip(sizes, sizes[1:]))
        #: Kernel of each pool applied to the previous pool's output (the input for the first).
        self.cascade_kernels = [large - small + 1 for small, large in zip(sizes, sizes[1:])]
        self.conv2 = ConvModule(mid_channels * (len(kernel_sizes) + 1), out_channels, 1,
                                **layer_cfgs)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        # Pooling in fp32 under autocast, as MMDetection.
        with torch.autocast(device_type=x.device.type, enabled=False):
            if self.cascade:
                pooled = [x]
                for size in self.cascade_kernels:
                    pooled.append(F.max_pool2d(pooled[-1], size, stride=1, padding=size // 2))
            else:
                pooled = [x] + [pooling(x) for pooling in self.poolings]
            x = torch.cat(pooled, dim=1)
        return self.conv2(x)
