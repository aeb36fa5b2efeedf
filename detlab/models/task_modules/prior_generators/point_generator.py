"""Points tiled over multi-level feature maps (FCOS and other anchor-free heads)."""
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .anchor_generator import grid_valid_flags, single_level_grid_valid_flags

DeviceType = Union[str, torch.device]


@TASK_UTILS.register_module()
class MlvlPointGenerator:
    """One point per feature-map cell on every level, value- and order-compatible
    with MMDetection.

    The point of the cell at row y, column x of a level with stride (sw, sh)
    is ``((x + offset) * sw, (y + offset) * sh)``.

    Args:
        strides (list[int] | list[tuple[int, int]]): Stride of each level, an
            int or (w, h); stored as ``self.strides`` in (w, h) pairs.
        offset (float): Position of the point inside its cell, as a fraction
            of the stride. Defaults to 0.5 (the cell centre).
    """

    def __init__(self, strides: Sequence[Union[int, Tuple[int, int]]],
                 offset: float = 0.5) -> None:
        self.strides = [_pair(stride) for stride in strides]
        self.offset = offset

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.strides)

    @property
    def num_base_priors(self) -> List[int]:
        """list[int]: Points per feature-map location (1), one entry per level."""
        return [1] * self.num_levels

    def _check_levels(self, featmap_sizes: Sequence) -> None:
        if len(featmap_sizes) != self.num_levels:
            raise AssertionValueError(f'MlvlPointGenerator: got {len(featmap_sizes)} feature map '
                                      f'sizes for {self.num_levels} levels '
                                      f'(strides={self.strides})')

    def grid_priors(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    dtype: torch.dtype = torch.float32,
                    device: DeviceType = 'cpu',
                    with_stride: bool = False) -> List[Tensor]:
        """Points of every level.

        Args:
            featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
            dtype (torch.dtype): Dtype of the points. Defaults to float32.
            device (str | torch.device): Device of the points.
            with_stride (bool): Append each point's (stride_w, stride_h).

        Returns:
            list[Tensor]: One (h * w, 2) tensor of x, y per level, or
            (h * w, 4) x, y, stride_w, stride_h with ``with_stride``.
        """
        self._check_levels(featmap_sizes)
        return [
            self.single_level_grid_priors(featmap_sizes[level], level, dtype=dtype,
                                          device=device, with_stride=with_stride)
            for level in range(self.num_levels)
        ]

    def single_level_grid_priors(self,
                                 featmap_size: Tuple[int, int],
                                 level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: DeviceType = 'cpu',
                                 with_stride: bool = False) -> Tensor:
        """Points of one level.

        Args:
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            level_idx (int): Level index.
            dtype (torch.dtype): Dtype of the points.
            device (str | torch.device): Device of the points.
            with_stride (bool): Append each point's (stride_w, stride_h).

        Returns:
            Tensor: (h * w, 2) or (h * w, 4); the point of row y, column x is
            at index y * w + x.
        """
        feat_h, feat_w = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        shift_x = ((torch.arange(0, feat_w, device=device) + self.offset) * stride_w).to(dtype)
        shift_y = ((torch.arange(0, feat_h, device=device) + self.offset) * stride_h).to(dtype)
        shift_yy, shift_xx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        columns = [shift_xx.reshape(-1), shift_yy.reshape(-1)]
        if with_stride:
            columns += [torch.full_like(columns[0], stride_w), torch.full_like(columns[0], stride_h)]
        return torch.stack(columns, dim=-1)

    def sparse_priors(self,
                      prior_idxs: Tensor,
                      featmap_size: Tuple[int, int],
                      level_idx: int,
                      dtype: torch.dtype = torch.float32,
                      device: DeviceType = 'cpu') -> Tensor:
        """The points at given flat indices of one level, without the full grid.

        Args:
            prior_idxs (Tensor): (M,) long indices into the level's
                ``single_level_grid_priors`` output.
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            level_idx (int): Level index.
            dtype (torch.dtype): Dtype of the points.
            device (str | torch.device): Device of the points.

        Returns:
            Tensor: (M, 2) x, y.
        """
        height, width = featmap_size
        stride_w, stride_h = self.strides[level_idx]
        x = (prior_idxs % width + self.offset) * stride_w
        y = ((prior_idxs // width) % height + self.offset) * stride_h
        return torch.stack([x, y], dim=1).to(dtype).to(device)

    def valid_flags(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Tuple[int, ...],
                    device: DeviceType = 'cpu') -> List[Tensor]:
        """Which points sit on feature cells that cover the padded image.

        Args:
            featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
            pad_shape (tuple): (h, w, ...) of the image after padding.
            device (str | torch.device): Device of the flags.

        Returns:
            list[Tensor]: One (h * w,) bool tensor per level.
        """
        self._check_levels(featmap_sizes)
        return grid_valid_flags(featmap_sizes, self.strides, pad_shape, self.num_base_priors,
                                device=device)

    def single_level_valid_flags(self,
                                 featmap_size: Tuple[int, int],
                                 valid_size: Tuple[int, int],
                                 device: DeviceType = 'cpu') -> Tensor:
        """Valid flags of one level: (h * w,) bool, True on the top-left
        ``valid_size`` part of the (h, w) feature map."""
        return single_level_grid_valid_flags(featmap_size, valid_size, 1, device=device)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(strides={self.strides}, offset={self.offset})'
