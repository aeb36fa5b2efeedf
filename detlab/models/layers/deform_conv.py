"""Deformable convolutions (DCN, DCNv2) with mmcv's parameter names, on torchvision's kernel.

mmcv's ``DeformConv2dPack`` (registered as ``'DCN'``) and
``ModulatedDeformConv2dPack`` (``'DCNv2'``) need mmcv's compiled extension.
These classes keep their constructor arguments, parameters (``weight``,
``bias`` for DCNv2, ``conv_offset.weight``/``.bias``), initialization and
offset layout, and compute with ``torchvision.ops.deform_conv2d``, so
MMDetection's DCN checkpoints load and give the same outputs.

Offset layout (mmcv's and torchvision's): ``(B, deform_groups * 2 * kh * kw,
H_out, W_out)``, for each deform group and kernel position ``k = i * kw + j``
the pair ``(dy, dx)`` at channels ``2k, 2k + 1``. DCNv2's mask is
``(B, deform_groups * kh * kw, H_out, W_out)``, in [0, 1].
"""
import math
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError

IntOrPair = Union[int, Tuple[int, int]]


class DeformConv2d(nn.Module):
    """Deformable convolution (Dai et al., 2017) given its offsets; no bias, as mmcv's.

    Args:
        in_channels (int): Input channels, divisible by ``groups`` and ``deform_groups``.
        out_channels (int): Output channels, divisible by ``groups``.
        kernel_size (int | tuple[int, int]): Kernel size.
        stride, padding, dilation (int | tuple[int, int]): As ``nn.Conv2d``.
        groups (int): Convolution groups. Defaults to 1.
        deform_groups (int): Channel groups that share one offset field. Defaults to 1.
        bias (bool): Must be False (mmcv's DeformConv2d has no bias).
        im2col_step (int): Accepted for mmcv's signature; torchvision's kernel
            needs no batch chunking. Defaults to 32.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 deform_groups: int = 1,
                 bias: bool = False,
                 im2col_step: int = 32) -> None:
        super().__init__()
        if bias:
            raise AssertionValueError(f'{type(self).__name__}: bias=True is not available (mmcv\'s '
                                      'DeformConv2d has no bias); use DCNv2 for a biased layer')
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation,
                            groups, deform_groups)
        self.im2col_step = im2col_step
        self.reset_parameters()

    def _init_geometry(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                       stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair, groups: int,
                       deform_groups: int) -> None:
        name = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise AssertionValueError(f'{name}: in_channels {in_channels} and out_channels '
                                      f'{out_channels} must be divisible by groups {groups}')
        if in_channels % deform_groups:
            raise AssertionValueError(f'{name}: in_channels {in_channels} must be divisible by '
                                      f'deform_groups {deform_groups}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        # Attributes nn.Conv2d has, which code inspecting conv layers reads.
        self.transposed = False
        self.output_padding = (0, )
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size))

    def reset_parameters(self) -> None:
        """He-uniform weights, as mmcv's DeformConv2d."""
        nn.init.kaiming_uniform_(self.weight, nonlinearity='relu')

    def _deform(self, x: Tensor, offset: Tensor, mask: Optional[Tensor] = None,
                bias: Optional[Tensor] = None) -> Tensor:
        return deform_conv2d(x, offset, self.weight, bias, stride=self.stride,
                             padding=self.padding, dilation=self.dilation, mask=mask)

    def forward(self, x: Tensor, offset: Tensor) -> Tensor:
        """Args: x (B, C_in, H, W); offset (B, deform_groups * 2 * kh * kw, H_out, W_out).

        Returns:
            Tensor: (B, C_out, H_out, W_out).
        """
        return self._deform(x, offset)

    def _offset_conv(self, channels_per_position: int) -> nn.Conv2d:
        """The conv that predicts offsets (and masks) from the input, zero-initialized."""
        kh, kw = self.kernel_size
        return nn.Conv2d(self.in_channels, self.deform_groups * channels_per_position * kh * kw,
                         kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                         dilation=self.dilation, bias=True)


@MODELS.register_module('DCN')
class DeformConv2dPack(DeformConv2d):
    """DCN as a drop-in conv: ``conv_offset`` predicts the offsets from the input.

    mmcv's ``DeformConv2dPack`` (config ``dict(type='DCN', deform_groups=1)``);
    ``conv_offset`` starts at zero, so the layer starts as a plain convolution.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv_offset = self._offset_conv(2)
        self.init_offset()

    def init_offset(self) -> None:
        """Zero offsets: the layer starts as a plain convolution."""
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """(B, C_in, H, W) -> (B, C_out, H_out, W_out)."""
        return self._deform(x, self.conv_offset(x))


class ModulatedDeformConv2d(DeformConv2d):
    """Modulated deformable convolution (DCNv2, Zhu et al., 2019) given offsets and masks.

    Arguments as :class:`DeformConv2d`, except that ``bias`` defaults to True
    (a ``bias`` parameter, zero-initialized) and there is no ``im2col_step``.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: IntOrPair,
                 stride: IntOrPair = 1,
                 padding: IntOrPair = 0,
                 dilation: IntOrPair = 1,
                 groups: int = 1,
                 deform_groups: int = 1,
                 bias: bool = True) -> None:
        nn.Module.__init__(self)
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding, dilation,
                            groups, deform_groups)
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter('bias', None)
        self.init_weights()

    def init_weights(self) -> None:
        """Uniform weights in +-1/sqrt(fan_in) and zero bias, as mmcv's."""
        bound = 1. / math.sqrt(self.in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor, offset: Tensor, mask: Tensor) -> Tensor:  # type: ignore
        """Args: x (B, C_in, H, W); offset (B, dg * 2 * kh * kw, H_out, W_out);
        mask (B, dg * kh * kw, H_out, W_out).

        Returns:
            Tensor: (B, C_out, H_out, W_out).
        """
        return self._deform(x, offset, mask, self.bias)


@MODELS.register_module('DCNv2')
class ModulatedDeformConv2dPack(ModulatedDeformConv2d):
    """DCNv2 as a drop-in conv: ``conv_offset`` predicts offsets and mask logits.

    mmcv's ``ModulatedDeformConv2dPack`` (config ``dict(type='DCNv2',
    deform_groups=1)``): ``conv_offset`` outputs ``3 * dg * kh * kw`` channels,
    split in three; the first two thirds are the offsets, the last the mask
    logits (sigmoid). Zero-initialized, so the layer starts as a plain
    convolution with every mask 0.5.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.conv_offset = self._offset_conv(3)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's init for the weights, zeros for ``conv_offset``."""
        super().init_weights()
        if hasattr(self, 'conv_offset'):
            nn.init.zeros_(self.conv_offset.weight)
            nn.init.zeros_(self.conv_offset.bias)

    def forward(self, x: Tensor) -> Tensor:  # type: ignore[override]
        """(B, C_in, H, W) -> (B, C_out, H_out, W_out)."""
        offset_y_x_first, offset_rest, mask_logits = torch.chunk(self.conv_offset(x), 3, dim=1)
        offset = torch.cat((offset_y_x_first, offset_rest), dim=1)
        return self._deform(x, offset, torch.sigmoid(mask_logits), self.bias)


#: ``dcn`` types of ResNet-style backbones: mmcv's registered names.
DCN_TYPES = {'DCN': DeformConv2dPack, 'DCNv2': ModulatedDeformConv2dPack}


def build_dcn_conv(dcn: dict, in_channels: int, out_channels: int, kernel_size: int, *,
                   owner: str, **kwargs) -> nn.Module:
    """Build a backbone's ``dcn`` config (``dict(type='DCN' | 'DCNv2', deform_groups=1,
    fallback_on_stride=False)``) as a bias-free deformable conv.

    ``fallback_on_stride`` says whether to build a plain conv instead; the
    caller reads it (:func:`dcn_falls_back`), so it is not passed on here.

    Raises:
        ValueError: An unknown ``type`` (the valid ones are named).
    """
    cfg = dict(dcn)
    cfg.pop('fallback_on_stride', None)
    layer_type = cfg.pop('type', None)
    if layer_type not in DCN_TYPES:
        raise AssertionValueError(f'{owner}: dcn={dcn!r} has type {layer_type!r}; detlab builds '
                                  f'{sorted(DCN_TYPES)} (mmcv\'s deformable convolutions)')
    return DCN_TYPES[layer_type](in_channels, out_channels, kernel_size, bias=False, **cfg,
                                 **kwargs)


def dcn_falls_back(dcn: Optional[dict]) -> bool:
    """True if a block given ``dcn`` uses a plain conv (no dcn, or ``fallback_on_stride``)."""
    return dcn is None or bool(dcn.get('fallback_on_stride', False))
