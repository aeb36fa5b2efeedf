"""ResNet's residual blocks, with MMDetection's (and torchvision's) key names."""
from typing import Optional

import torch.utils.checkpoint as checkpoint
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule
from torch import Tensor, nn

RESNET_STYLES = ('pytorch', 'caffe')


class _ResidualBlock(BaseModule):
    """``relu(residual(x) + shortcut(x))``, optionally with activation checkpointing.

    Subclasses build ``conv{i}``/``bn{i}`` layers and implement ``_residual``.
    ``zero_init_residual`` zeroes the last norm (``norm2`` here, ``norm3`` in
    Bottleneck) through an init_cfg override by that property name.
    """

    expansion = 1

    def __init__(self, downsample: Optional[nn.Module], with_cp: bool,
                 init_cfg: Optional[dict]) -> None:
        super().__init__(init_cfg)
        self.downsample = downsample
        self.with_cp = with_cp
        self.relu = nn.ReLU(inplace=True)

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
        return self._residual(x) + identity

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
        init_cfg (dict, optional): Initialization config. Defaults to None.
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
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(downsample, with_cp, init_cfg)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.norm1_name = self._add_norm(norm_cfg, planes, 1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False)
        self.norm2_name = self._add_norm(norm_cfg, planes, 2)

    def _residual(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        return self.norm2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1x1 -> 3x3 -> 1x1 block (ResNet-50/101/152), 4x wider output.

    ``style='pytorch'`` puts the stride on the 3x3 conv, ``'caffe'`` on the
    first 1x1 conv. Arguments as :class:`BasicBlock`; the output has
    ``planes * 4`` channels.
    """

    expansion = 4

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
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(downsample, with_cp, init_cfg)
        if style not in RESNET_STYLES:
            raise ValueError(f'Bottleneck: style must be one of {RESNET_STYLES}, got {style!r}')
        self.style = style
        self.conv1_stride, self.conv2_stride = (1, stride) if style == 'pytorch' else (stride, 1)
        self.conv1 = build_conv_layer(conv_cfg, inplanes, planes, 1, stride=self.conv1_stride,
                                      bias=False)
        self.norm1_name = self._add_norm(norm_cfg, planes, 1)
        self.conv2 = build_conv_layer(conv_cfg, planes, planes, 3, stride=self.conv2_stride,
                                      padding=dilation, dilation=dilation, bias=False)
        self.norm2_name = self._add_norm(norm_cfg, planes, 2)
        self.conv3 = build_conv_layer(conv_cfg, planes, planes * self.expansion, 1, bias=False)
        self.norm3_name = self._add_norm(norm_cfg, planes * self.expansion, 3)

    @property
    def norm3(self) -> nn.Module:
        """The norm after conv3; zeroed by ``zero_init_residual``."""
        return getattr(self, self.norm3_name)

    def _residual(self, x: Tensor) -> Tensor:
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.relu(self.norm2(self.conv2(out)))
        return self.norm3(self.conv3(out))
