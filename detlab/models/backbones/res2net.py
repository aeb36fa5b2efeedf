"""Res2Net backbone: bottlenecks whose 3x3 conv is split into ``scales`` chained groups.

`Res2Net: A New Multi-scale Backbone Architecture <https://arxiv.org/abs/1904.01169>`_,
with MMDetection 3.x's config keys and state_dict keys.
"""
import math
from typing import List, Optional

import torch
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import Sequential
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers import ResLayer
from .resnet import ResNet
from .resnet_blocks import _ResidualBlock, build_conv_or_dcn

#: The first block of a stage ('stage') convolves every split on its own and
#: average-pools the untouched last split; later blocks ('normal') chain the splits.
STAGE_TYPES = ('normal', 'stage')


class Bottle2neck(_ResidualBlock):
    """1x1 conv -> ``scales - 1`` chained 3x3 convs over channel splits -> 1x1 conv.

    ``conv1`` outputs ``width * scales`` channels (``width = floor(planes *
    base_width / base_channels)``), split into ``scales`` groups of ``width``.
    Split ``i < scales - 1`` goes through ``convs[i]``/``bns[i]``/ReLU, after
    adding the previous split's output in 'normal' blocks; the last split is
    passed on as is (average-pooled by the stride in a strided 'stage' block).
    ``conv3``/``norm3`` output ``planes * 4`` channels.

    Args:
        inplanes (int): Input channels.
        planes (int): Stage width; the block outputs ``planes * 4`` channels.
        scales (int): Splits, > 1. Defaults to 4.
        base_width (int): Channels of a split in the first stage. Defaults to 26.
        base_channels (int): The backbone's ``base_channels``. Defaults to 64.
        stage_type (str): 'normal' or 'stage' (see above). Defaults to 'normal'.
        stride, dilation, downsample, style, with_cp, conv_cfg, norm_cfg,
        init_cfg, act_cfg: As ResNet's ``Bottleneck``.
        dcn (dict, optional): Makes every split's 3x3 conv deformable.
        plugins (list[dict], optional): As ResNet's; the ``after_conv1`` and
            ``after_conv2`` plug-ins get ``width * scales`` channels, the
            channels there.
    """

    expansion = 4
    plugin_positions = ('after_conv1', 'after_conv2', 'after_conv3')

    def __init__(self,
                 inplanes: int,
                 planes: int,
                 scales: int = 4,
                 base_width: int = 26,
                 base_channels: int = 64,
                 stage_type: str = 'normal',
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
        if scales <= 1:
            raise AssertionValueError(f'Bottle2neck: scales must be > 1 (Res2Net with one scale '
                                      f'is ResNet), got {scales}')
        if stage_type not in STAGE_TYPES:
            raise AssertionValueError(f'Bottle2neck: stage_type must be one of {STAGE_TYPES}, '
                                      f'got {stage_type!r}')
        self.scales = scales
        self.stage_type = stage_type
        self.width = width = int(math.floor(planes * (base_width / base_channels)))
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width * scales, kernel_size=1,
                                      stride=self.conv1_stride, bias=False)
        self.norm1_name = self._add_norm(norm_cfg, width * scales, 1)
        if stage_type == 'stage' and self.conv2_stride != 1:
            self.pool = nn.AvgPool2d(kernel_size=3, stride=self.conv2_stride, padding=1)
        self.dcn = dcn
        self.with_dcn = dcn is not None
        self.convs = nn.ModuleList(
            build_conv_or_dcn(conv_cfg, dcn, width, width, 'Bottle2neck',
                              stride=self.conv2_stride, padding=dilation, dilation=dilation)
            for _ in range(scales - 1))
        self.bns = nn.ModuleList(
            build_norm_layer(norm_cfg, width, postfix=i + 1)[1] for i in range(scales - 1))
        self.conv3 = build_conv_layer(conv_cfg, width * scales, planes * self.expansion,
                                      kernel_size=1, bias=False)
        self.norm3_name = self._add_norm(norm_cfg, planes * self.expansion, 3)
        self._add_plugins(plugins, width * scales, width * scales, planes * self.expansion)

    @property
    def norm3(self) -> nn.Module:
        """The norm after conv3; zeroed by ``zero_init_residual``."""
        return getattr(self, self.norm3_name)

    def _residual(self, x: Tensor) -> Tensor:
        out = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        splits = torch.split(out, self.width, 1)
        outs = []
        sp = None
        for i, (conv, norm) in enumerate(zip(self.convs, self.bns)):
            sp = splits[i] if sp is None or self.stage_type == 'stage' else sp + splits[i]
            sp = self.relu(norm(conv(sp.contiguous())))
            outs.append(sp)
        last = splits[-1]
        if self.stage_type == 'stage' and self.conv2_stride != 1:
            last = self.pool(last)
        out = self._plugins(torch.cat(outs + [last], 1), 'after_conv2')
        return self._plugins(self.norm3(self.conv3(out)), 'after_conv3')


class Res2Layer(Sequential):
    """A Res2Net stage: a 'stage' Bottle2neck, then 'normal' ones.

    The shortcut of the first block is average-pooled by the stride and
    projected by a 1x1 conv (``downsample.1``) and norm (``downsample.2``).

    Args:
        block (type): :class:`Bottle2neck`.
        inplanes (int): Channels entering the stage.
        planes (int): Stage width (``planes * 4`` channels out).
        num_blocks (int): Blocks in the stage.
        stride (int): Stride of the first block. Defaults to 1.
        avg_down (bool): Ignored, as in MMDetection: the shortcut is always
            average-pooled.
        conv_cfg (dict, optional): mmcv conv config.
        norm_cfg (dict): mmcv norm config.
        scales (int): Splits per block. Defaults to 4.
        base_width (int): Split width of the first stage. Defaults to 26.
        **kwargs: Passed to every block.
    """

    def __init__(self,
                 block: type,
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 stride: int = 1,
                 avg_down: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 scales: int = 4,
                 base_width: int = 26,
                 **kwargs) -> None:
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_channels:
            downsample = ResLayer._make_downsample(inplanes, out_channels, stride, True,
                                                   conv_cfg, norm_cfg)
        common = dict(planes=planes, conv_cfg=conv_cfg, norm_cfg=norm_cfg, scales=scales,
                      base_width=base_width, **kwargs)
        blocks = [block(inplanes=inplanes, stride=stride, downsample=downsample,
                        stage_type='stage', **common)]
        blocks += [block(inplanes=out_channels, stride=1, **common)
                   for _ in range(1, num_blocks)]
        super().__init__(*blocks)


@MODELS.register_module()
class Res2Net(ResNet):
    """Res2Net: ResNet-D (deep stem, average-pooled shortcuts) of :class:`Bottle2neck`\\ s.

    ``style``, ``deep_stem`` and ``avg_down`` are accepted for MMDetection's
    configs and, as there, fixed to 'pytorch', True and True.

    Args:
        scales (int): Splits of each block's 3x3 conv. Defaults to 4.
        base_width (int): Split width in the first stage. Defaults to 26.
        depth (int): 50, 101 or 152.
        **kwargs: The other arguments of :class:`ResNet`.

    Example:
        >>> feats = Res2Net(depth=50).eval()(torch.rand(1, 3, 32, 32))
        >>> [tuple(f.shape) for f in feats]
        [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2), (1, 2048, 1, 1)]
    """

    arch_settings = {
        50: (Bottle2neck, (3, 4, 6, 3)),
        101: (Bottle2neck, (3, 4, 23, 3)),
        152: (Bottle2neck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 scales: int = 4,
                 base_width: int = 26,
                 style: str = 'pytorch',
                 deep_stem: bool = True,
                 avg_down: bool = True,
                 **kwargs) -> None:
        self.scales = scales
        self.base_width = base_width
        super().__init__(style='pytorch', deep_stem=True, avg_down=True, **kwargs)

    def make_res_layer(self, **kwargs) -> Res2Layer:
        """One stage of Bottle2necks."""
        return Res2Layer(scales=self.scales, base_width=self.base_width,
                         base_channels=self.base_channels, **kwargs)
