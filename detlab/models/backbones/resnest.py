"""ResNeSt backbone: ResNet-D whose 3x3 convs are split-attention convs.

`ResNeSt: Split-Attention Networks <https://arxiv.org/abs/2004.08955>`_, with
MMDetection 3.x's config keys and state_dict keys.
"""
import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers import ResLayer
from .resnet import ResNetV1d
from .resnet_blocks import _ResidualBlock, build_conv_or_dcn

#: The attention's hidden width is ``max(in_channels * radix // reduction_factor, this)``.
MIN_INTER_CHANNELS = 32


class RSoftmax(nn.Module):
    """Softmax over the ``radix`` splits of each group (a sigmoid when radix is 1).

    Args:
        radix (int): Splits.
        groups (int): Groups (cardinality).
    """

    def __init__(self, radix: int, groups: int) -> None:
        super().__init__()
        self.radix = radix
        self.groups = groups

    def forward(self, x: Tensor) -> Tensor:
        """(B, groups * radix * C', 1, 1) logits -> (B, radix * groups * C') weights."""
        batch = x.size(0)
        if self.radix == 1:
            return torch.sigmoid(x)
        x = x.view(batch, self.groups, self.radix, -1).transpose(1, 2)
        return F.softmax(x, dim=1).reshape(batch, -1)


class SplitAttentionConv2d(BaseModule):
    """Split-attention conv: ``radix`` grouped convs weighted by a softmax attention.

    ``conv`` (groups ``groups * radix``) and ``norm0``/ReLU give ``radix``
    splits of ``channels``; their sum, globally average-pooled, goes through
    ``fc1``/``norm1``/ReLU/``fc2`` to one weight per split and channel
    (:class:`RSoftmax`); the output is the weighted sum of the splits.

    Args:
        in_channels (int): Input channels.
        channels (int): Output channels.
        kernel_size (int): Kernel of ``conv``.
        stride, padding, dilation (int): Of ``conv``.
        groups (int): Groups (cardinality). Defaults to 1.
        radix (int): Splits. Defaults to 2.
        reduction_factor (int): The attention's hidden width is
            ``max(in_channels * radix // reduction_factor, 32)``. Defaults to 4.
        conv_cfg (dict, optional): mmcv conv config of ``conv``.
        norm_cfg (dict): mmcv norm config. Defaults to ``dict(type='BN')``.
        dcn (dict, optional): Makes ``conv`` deformable (3x3 only).
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 channels: int,
                 kernel_size: int,
                 stride: int = 1,
                 padding: int = 0,
                 dilation: int = 1,
                 groups: int = 1,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if radix < 1:
            raise AssertionValueError(f'SplitAttentionConv2d: radix must be >= 1, got {radix}')
        inter_channels = max(in_channels * radix // reduction_factor, MIN_INTER_CHANNELS)
        self.radix = radix
        self.groups = groups
        self.channels = channels
        self.with_dcn = dcn is not None
        conv_args = dict(stride=stride, padding=padding, dilation=dilation, groups=groups * radix)
        if dcn is not None and kernel_size != 3:
            raise AssertionValueError(f'SplitAttentionConv2d: dcn needs kernel_size 3, got '
                                      f'{kernel_size}')
        if dcn is None:
            self.conv = build_conv_layer(conv_cfg, in_channels, channels * radix, kernel_size,
                                         bias=False, **conv_args)
        else:
            self.conv = build_conv_or_dcn(conv_cfg, dcn, in_channels, channels * radix,
                                          'SplitAttentionConv2d', **conv_args)
        self.norm0_name = self._add_norm(norm_cfg, channels * radix, 0)
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = build_conv_layer(None, channels, inter_channels, 1, groups=groups)
        self.norm1_name = self._add_norm(norm_cfg, inter_channels, 1)
        self.fc2 = build_conv_layer(None, inter_channels, channels * radix, 1, groups=groups)
        self.rsoftmax = RSoftmax(radix, groups)

    def _add_norm(self, norm_cfg: dict, channels: int, index: int) -> str:
        name, norm = build_norm_layer(norm_cfg, channels, postfix=index)
        self.add_module(name, norm)
        return name

    @property
    def norm0(self) -> nn.Module:
        """The norm after ``conv``."""
        return getattr(self, self.norm0_name)

    @property
    def norm1(self) -> nn.Module:
        """The norm inside the attention."""
        return getattr(self, self.norm1_name)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, channels, H', W')."""
        x = self.relu(self.norm0(self.conv(x)))
        batch = x.size(0)
        if self.radix > 1:
            splits = x.view(batch, self.radix, -1, *x.shape[2:])
            gap = splits.sum(dim=1)
        else:
            gap = x
        gap = self.relu(self.norm1(self.fc1(F.adaptive_avg_pool2d(gap, 1))))
        atten = self.rsoftmax(self.fc2(gap)).view(batch, -1, 1, 1)
        if self.radix > 1:
            out = torch.sum(atten.view(batch, self.radix, -1, 1, 1) * splits, dim=1)
        else:
            out = atten * x
        return out.contiguous()


class Bottleneck(_ResidualBlock):
    """ResNeSt's bottleneck: 1x1 conv -> split-attention 3x3 conv [-> 3x3 avg pool] -> 1x1.

    With ``avg_down_stride`` a strided block runs its split-attention conv at
    stride 1 and downsamples with ``avd_layer`` (3x3 average pool) after it.
    The inner width is ``planes``, or ``floor(planes * base_width /
    base_channels) * groups`` with groups.

    Args:
        inplanes (int): Input channels.
        planes (int): Stage width; the block outputs ``planes * 4`` channels.
        groups (int): Cardinality. Defaults to 1.
        base_width (int): Channels per group in the first stage. Defaults to 4.
        base_channels (int): The backbone's ``base_channels``. Defaults to 64.
        radix (int): Splits of the attention conv. Defaults to 2.
        reduction_factor (int): See :class:`SplitAttentionConv2d`. Defaults to 4.
        avg_down_stride (bool): See above. Defaults to True.
        stride, dilation, downsample, style, with_cp, conv_cfg, norm_cfg, dcn,
        plugins, init_cfg, act_cfg: As ResNet's ``Bottleneck`` (plug-ins get
        ``planes``, ``planes`` and ``planes * 4`` channels, as in MMDetection).
    """

    expansion = 4
    plugin_positions = ('after_conv1', 'after_conv2', 'after_conv3')

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 groups: int = 1,
                 base_width: int = 4,
                 base_channels: int = 64,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 avg_down_stride: bool = True,
                 stride: int = 1,
                 dilation: int = 1,
                 downsample: Optional[nn.Module] = None,
                 style: str = 'pytorch',
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 dcn: Optional[dict] = None,
                 plugins: Optional[List[dict]] = None,
                 init_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU')) -> None:
        super().__init__(downsample, with_cp, init_cfg, act_cfg, plugins)
        width = planes if groups == 1 else math.floor(planes * base_width / base_channels) * groups
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.avg_down_stride = avg_down_stride and self.conv2_stride > 1
        self.dcn = dcn
        self.with_dcn = dcn is not None
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, kernel_size=1,
                                      stride=self.conv1_stride, bias=False)
        self.norm1_name = self._add_norm(norm_cfg, width, 1)
        self.conv2 = SplitAttentionConv2d(
            width, width, kernel_size=3, stride=1 if self.avg_down_stride else self.conv2_stride,
            padding=dilation, dilation=dilation, groups=groups, radix=radix,
            reduction_factor=reduction_factor, conv_cfg=conv_cfg, norm_cfg=norm_cfg, dcn=dcn)
        if self.avg_down_stride:
            self.avd_layer = nn.AvgPool2d(3, self.conv2_stride, padding=1)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, kernel_size=1,
                                      bias=False)
        self.norm3_name = self._add_norm(norm_cfg, planes * self.expansion, 3)
        self._add_plugins(plugins, planes, planes, planes * self.expansion)

    @property
    def norm3(self) -> nn.Module:
        """The norm after conv3; zeroed by ``zero_init_residual``."""
        return getattr(self, self.norm3_name)

    def _residual(self, x: Tensor) -> Tensor:
        out = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        out = self.conv2(out)
        if self.avg_down_stride:
            out = self.avd_layer(out)
        out = self._plugins(out, 'after_conv2')
        return self._plugins(self.norm3(self.conv3(out)), 'after_conv3')


@MODELS.register_module()
class ResNeSt(ResNetV1d):
    """ResNeSt: ResNet-D (deep stem, average-pooled shortcuts) of split-attention bottlenecks.

    Args:
        groups (int): Cardinality of each bottleneck. Defaults to 1.
        base_width (int): Channels per group in the first stage. Defaults to 4.
        radix (int): Splits of each split-attention conv. Defaults to 2.
        reduction_factor (int): See :class:`SplitAttentionConv2d`. Defaults to 4.
        avg_down_stride (bool): Strided blocks downsample with a 3x3 average
            pool after the attention conv. Defaults to True.
        **kwargs: :class:`ResNet`'s arguments; ``depth`` is 50, 101, 152 or 200.
    """

    arch_settings = {
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
        200: (Bottleneck, (3, 24, 36, 3)),
    }

    def __init__(self,
                 groups: int = 1,
                 base_width: int = 4,
                 radix: int = 2,
                 reduction_factor: int = 4,
                 avg_down_stride: bool = True,
                 **kwargs) -> None:
        self.groups = groups
        self.base_width = base_width
        self.radix = radix
        self.reduction_factor = reduction_factor
        self.avg_down_stride = avg_down_stride
        super().__init__(**kwargs)

    def make_res_layer(self, **kwargs) -> ResLayer:
        """One stage of ResNeSt bottlenecks."""
        return ResLayer(groups=self.groups, base_width=self.base_width,
                        base_channels=self.base_channels, radix=self.radix,
                        reduction_factor=self.reduction_factor,
                        avg_down_stride=self.avg_down_stride, **kwargs)
