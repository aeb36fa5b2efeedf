"""ResNet's residual blocks, with MMDetection's (and torchvision's) key names."""
from typing import List, Optional

import torch.utils.checkpoint as checkpoint
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.structures.errors import AssertionValueError
from ..layers.activation import build_activation
from ..layers.deform_conv import build_dcn_conv, dcn_falls_back
from ..layers.plugins import add_block_plugins, forward_plugins

RESNET_STYLES = ('pytorch', 'caffe')


def refuse_dcn(owner: str, dcn: Optional[dict]) -> None:
    """Blocks without a deformable variant (BasicBlock, as in MMDetection) refuse ``dcn``."""
    if dcn is not None:
        raise AssertionValueError(f'{owner}: dcn={dcn!r} is only available in Bottleneck '
                                  'blocks (ResNet-50/101/152, ResNeXt, RegNet); remove the '
                                  "'dcn' key (and 'stage_with_dcn') or use a deeper backbone")


def build_conv_or_dcn(conv_cfg: Optional[dict], dcn: Optional[dict], in_channels: int,
                      out_channels: int, owner: str, **kwargs) -> nn.Module:
    """A block's bias-free 3x3 conv: deformable when ``dcn`` is given and does not fall back.

    Raises:
        ValueError: ``conv_cfg`` together with a deformable ``dcn``.
    """
    if dcn_falls_back(dcn):
        return build_conv_layer(conv_cfg, in_channels, out_channels, 3, bias=False, **kwargs)
    if conv_cfg is not None:
        raise AssertionValueError(f'{owner}: conv_cfg must be None with dcn (got conv_cfg='
                                  f'{conv_cfg!r}, dcn={dcn!r})')
    return build_dcn_conv(dcn, in_channels, out_channels, 3, owner=owner, **kwargs)


class _ResidualBlock(BaseModule):
    """``relu(residual(x) + shortcut(x))``, optionally with activation checkpointing.

    Subclasses build ``conv{i}``/``bn{i}`` layers and implement ``_residual``.
    ``zero_init_residual`` zeroes the last norm (``norm2`` here, ``norm3`` in
    Bottleneck) through an init_cfg override by that property name.
    """

    expansion = 1

    #: Plugin positions this block has (BasicBlock has no conv3).
    plugin_positions = ('after_conv1', 'after_conv2')

    def __init__(self, downsample: Optional[nn.Module], with_cp: bool, init_cfg: Optional[dict],
                 act_cfg: dict, plugins: Optional[List[dict]]) -> None:
        super().__init__(init_cfg)
        for plugin in plugins or ():
            if plugin['position'] not in self.plugin_positions:
                raise AssertionValueError(f"{type(self).__name__}: plugin position "
                                          f"{plugin['position']!r} does not exist in this block; "
                                          f'use one of {self.plugin_positions}')
        self.downsample = downsample
        self.with_cp = with_cp
        self.plugins = plugins
        self.with_plugins = plugins is not None
        # One activation module, as MMDetection's ``relu``; a PReLU's slope is
        # thus shared by the activations of the block.
        self.relu = build_activation(act_cfg)

    def _add_plugins(self, plugins: Optional[List[dict]], *channels: int) -> None:
        """Build the plugins of each position, given the channels there."""
        self.plugin_names = {
            position: add_block_plugins(self, plugins, position, width)
            for position, width in zip(self.plugin_positions, channels)
        }

    def _plugins(self, x: Tensor, position: str) -> Tensor:
        return forward_plugins(self, x, self.plugin_names[position])

    def _add_norm(self, norm_cfg: dict, channels: int, index: int) -> str:
        # build_norm_layer names it bn1/gn1/... after the norm type, as mmdet does.
        name, norm = build_norm_layer(norm_cfg, channels, postfix=index)
        self.add_module(name, norm)
        return name

    @property
    def norm1(self) -> nn.Module:
        """The norm after conv1 (``bn1`` for BN)."""
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        """The norm after conv2 (``bn2`` for BN); BasicBlock's last norm."""
        return getattr(self, self.norm2_name)

    def _residual(self, x: Tensor) -> Tensor:
        """The conv/norm branch, without the final ReLU; defined by each block."""
        raise NotImplementedError

    def _inner_forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self._residual(x)
        out += identity  # in place, as MMDetection: no new (B, C, H, W) buffer per block
        return out

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block.

        Args:
            x (Tensor): (B, inplanes, H, W).

        Returns:
            Tensor: (B, planes * expansion, H / stride, W / stride).
        """
        if self.with_cp and x.requires_grad:
            # Recompute activations in backward: less memory, more time.
            out = checkpoint.checkpoint(self._inner_forward, x, use_reentrant=False)
        else:
            out = self._inner_forward(x)
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs (ResNet-18/34). ``style`` has no effect: the stride is on conv1.

    Args:
        inplanes (int): Input channels.
        planes (int): Output channels (``expansion`` is 1).
        stride (int): Stride of the first conv. Defaults to 1.
        dilation (int): Dilation of the first conv. Defaults to 1.
        downsample (nn.Module, optional): Shortcut projection. Defaults to None.
        style (str): 'pytorch' or 'caffe'. Defaults to 'pytorch'.
        with_cp (bool): Activation checkpointing. Defaults to False.
        conv_cfg (dict, optional): mmcv conv config. Defaults to None.
        norm_cfg (dict): mmcv norm config. Defaults to ``dict(type='BN')``.
        dcn (dict, optional): Must be None (MMDetection's BasicBlock has no
            deformable variant).
        plugins (list[dict], optional): ``dict(cfg, position)`` entries (see
            ``detlab.models.layers.plugins``); positions ``after_conv1`` and
            ``after_conv2`` (MMDetection's BasicBlock takes none).
        init_cfg (dict, optional): Initialization config. Defaults to None.
        act_cfg (dict): Activation, built as ConvModule builds it. Defaults
            to ``dict(type='ReLU')``.
    """

    expansion = 1

    def __init__(self,
                 inplanes: int,
                 planes: int,
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
        refuse_dcn(type(self).__name__, dcn)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.norm1_name = self._add_norm(norm_cfg, planes, 1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.norm2_name = self._add_norm(norm_cfg, planes, 2)
        self._add_plugins(plugins, planes, planes)

    def _residual(self, x: Tensor) -> Tensor:
        out = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        return self._plugins(self.norm2(self.conv2(out)), 'after_conv2')


class Bottleneck(_ResidualBlock):
    """1x1 -> 3x3 -> 1x1 block (ResNet-50/101/152), 4x wider output.

    ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the
    first 1x1 conv. Arguments as :class:`BasicBlock`; the output has
    ``planes * 4`` channels, and plugins may also sit ``after_conv3``.
    ``dcn=dict(type='DCN' | 'DCNv2', deform_groups=1, fallback_on_stride=False)``
    makes the 3x3 conv deformable (mmcv's layers and keys, ``conv2.conv_offset``);
    ``fallback_on_stride=True`` keeps it a plain conv.
    """

    expansion = 4
    plugin_positions = ('after_conv1', 'after_conv2', 'after_conv3')

    def __init__(self,
                 inplanes: int,
                 planes: int,
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
        self._build(inplanes, planes, planes, 1, stride, dilation, downsample, style, with_cp,
                    conv_cfg, norm_cfg, dcn, plugins, init_cfg, act_cfg)

    def _build(self, inplanes: int, planes: int, width: int, groups: int, stride: int,
               dilation: int, downsample: Optional[nn.Module], style: str, with_cp: bool,
               conv_cfg: Optional[dict], norm_cfg: dict, dcn: Optional[dict],
               plugins: Optional[List[dict]], init_cfg: Optional[dict], act_cfg: dict) -> None:
        """Build the layers: ``width`` channels (in ``groups`` groups) inside the block."""
        super().__init__(downsample, with_cp, init_cfg, act_cfg, plugins)
        if style not in RESNET_STYLES:
            raise AssertionValueError(f'{type(self).__name__}: style must be one of '
                                      f'{RESNET_STYLES}, got {style!r}')
        self.style = style
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, width, 1, stride=self.conv1_stride,
                                      bias=False)
        self.norm1_name = self._add_norm(norm_cfg, width, 1)
        conv2_args = dict(stride=self.conv2_stride, padding=dilation, dilation=dilation,
                          groups=groups)
        self.dcn = dcn
        self.with_dcn = dcn is not None
        self.conv2 = build_conv_or_dcn(conv_cfg, dcn, width, width, type(self).__name__,
                                       **conv2_args)
        self.norm2_name = self._add_norm(norm_cfg, width, 2)
        self.conv3 = build_conv_layer(conv_cfg, width, planes * self.expansion, 1, bias=False)
        self.norm3_name = self._add_norm(norm_cfg, planes * self.expansion, 3)
        self._add_plugins(plugins, width, width, planes * self.expansion)

    @property
    def norm3(self) -> nn.Module:
        """The norm after conv3; zeroed by ``zero_init_residual``."""
        return getattr(self, self.norm3_name)

    def _residual(self, x: Tensor) -> Tensor:
        out = self._plugins(self.relu(self.norm1(self.conv1(x))), 'after_conv1')
        out = self._plugins(self.relu(self.norm2(self.conv2(out))), 'after_conv2')
        return self._plugins(self.norm3(self.conv3(out)), 'after_conv3')
