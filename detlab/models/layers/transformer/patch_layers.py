"""Token <-> feature-map reshapes and the patch layers of the vision transformers.

``PatchEmbed`` (a strided conv, then an optional norm, giving (B, L, C)
tokens) and ``PatchMerging`` (``nn.Unfold`` of each k x k neighbourhood, a
norm, then a linear reduction) are mmcv's own modules, pure PyTorch in
``mmcv-lite``; MMDetection's copies differ from them only in the name of a
parameter-free attribute, so ``state_dict`` keys (``projection``, ``norm``,
``reduction``) and outputs are MMDetection's.
"""
from typing import Sequence, Tuple, Union

from torch import Tensor

from detlab.structures.errors import AssertionValueError

# Importing .utils first imports mmcv's transformer bricks with mmcv-lite's warning silenced.
from . import utils  # noqa: F401
from mmcv.cnn.bricks.transformer import PatchEmbed, PatchMerging  # noqa: E402,F401,I100
from mmengine.utils import to_2tuple  # noqa: E402,I100


def nlc_to_nchw(x: Tensor, hw_shape: Sequence[int]) -> Tensor:
    """(B, H*W, C) tokens -> (B, C, H, W) map.

    Raises:
        AssertionValueError: ``x`` is not 3-d or its length is not ``H * W``.
    """
    height, width = hw_shape
    if x.dim() != 3 or x.shape[1] != height * width:
        raise AssertionValueError(f'nlc_to_nchw: tokens of shape {tuple(x.shape)} do not fill '
                                  f'a {height}x{width} map; expected (B, {height * width}, C).')
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], height, width).contiguous()


def nchw_to_nlc(x: Tensor) -> Tensor:
    """(B, C, H, W) map -> (B, H*W, C) tokens."""
    if x.dim() != 4:
        raise AssertionValueError('nchw_to_nlc: expected a (B, C, H, W) map, got shape '
                                  f'{tuple(x.shape)}.')
    return x.flatten(2).transpose(1, 2).contiguous()


def image_size_pair(size: Union[int, Tuple[int, ...]]) -> Tuple[int, int]:
    """``size`` or ``(size, )`` as (height, width).

    Raises:
        ValueError: A tuple of another length.
    """
    if isinstance(size, int):
        return to_2tuple(size)
    size = tuple(size)
    if len(size) == 1:
        return to_2tuple(size[0])
    if len(size) != 2:
        raise AssertionValueError(f'pretrain_img_size must be an int or have 1 or 2 entries, got '
                                  f'{size!r}.')
    return size
