"""Anchors tiled over multi-level feature maps (RetinaNet, RPN, Faster R-CNN)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import HorizontalBoxes
from detlab.structures.errors import AssertionValueError

DeviceType = Union[str, torch.device]


@TASK_UTILS.register_module()
class AnchorGenerator:
    """Standard 2D anchor generator, value- and order-compatible with MMDetection.

    At each level, A = len(ratios) * len(scales) base anchors of size
    ``base_size * scale`` and aspect ratio h / w = ``ratio`` are centred at
    ``center`` (default ``center_offset * base_size``), then shifted by the
    stride to every feature-map location.

    Args:
        strides (list[int] | list[tuple[int, int]]): Stride of each level, an
            int or (w, h); stored as ``self.strides`` in (w, h) pairs.
        ratios (list[float]): Height / width ratios of the anchors.
        scales (list[float], optional): Anchor scales; exclusive with
            ``octave_base_scale`` + ``scales_per_octave``.
        base_sizes (list[int], optional): Base size of each level; defaults to
            the smaller side of each stride.
        scale_major (bool): Order the base anchors scale-fastest within a
            ratio (True) or ratio-fastest within a scale (False).
            Defaults to True.
        octave_base_scale (int, optional): With ``scales_per_octave`` = S,
            scales are ``octave_base_scale * 2 ** (i / S)`` for i < S.
        scales_per_octave (int, optional): See ``octave_base_scale``.
        centers (list[tuple[float, float]], optional): Base-anchor centre of
            each level, relative to the top-left of a feature cell.
        center_offset (float): Centre as a fraction of the base size, in
            [0, 1]; only when ``centers`` is None. Defaults to 0.
        use_box_type (bool): ``grid_priors`` returns HorizontalBoxes instead of
            tensors. Defaults to False.
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[float],
                 scales: Optional[Sequence[float]] = None,
                 base_sizes: Optional[Sequence[int]] = None,
                 scale_major: bool = True,
                 octave_base_scale: Optional[int] = None,
                 scales_per_octave: Optional[int] = None,
                 centers: Optional[Sequence[Tuple[float, float]]] = None,
                 center_offset: float = 0.,
                 use_box_type: bool = False) -> None:
        if not 0 <= center_offset <= 1:
            raise AssertionValueError(
                f'AnchorGenerator: center_offset must be in [0, 1], got {center_offset}')
        if center_offset != 0 and centers is not None:
            raise AssertionValueError('AnchorGenerator: give either centers or a non-zero '
                                      f'center_offset, not both (centers={centers}, '
                                      f'center_offset={center_offset})')
        if centers is not None and len(centers) != len(strides):
            raise AssertionValueError('AnchorGenerator: one center per level needed; got '
                                      f'{len(strides)} strides and centers={centers}')
        self.strides = [_pair(stride) for stride in strides]
        self.base_sizes = ([min(stride) for stride in self.strides]
                           if base_sizes is None else list(base_sizes))
        if len(self.base_sizes) != len(self.strides):
            raise AssertionValueError(f'AnchorGenerator: base_sizes={self.base_sizes} must have '
                                      f'one entry per stride in strides={self.strides}')
        self.scales = self._make_scales(scales, octave_base_scale, scales_per_octave)
        self.octave_base_scale = octave_base_scale
        self.scales_per_octave = scales_per_octave
        self.ratios = torch.Tensor(ratios)
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.base_anchors = self.gen_base_anchors()
        self.use_box_type = use_box_type

    @staticmethod
    def _make_scales(scales, octave_base_scale, scales_per_octave) -> Tensor:
        octave_given = octave_base_scale is not None and scales_per_octave is not None
        if octave_given == (scales is not None):
            raise AssertionValueError('AnchorGenerator: set exactly one of `scales` or '
                                      '`octave_base_scale` with `scales_per_octave`; got '
                                      f'scales={scales}, octave_base_scale={octave_base_scale}, '
                                      f'scales_per_octave={scales_per_octave}')
        if scales is not None:
            return torch.Tensor(scales)
        octave_scales = [2**(i / scales_per_octave) for i in range(scales_per_octave)]
        return torch.Tensor([octave_base_scale * scale for scale in octave_scales])

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.strides)

    def base_anchors_on(self, level_idx: int, device: DeviceType,
                        dtype: torch.dtype = torch.float32) -> Tensor:
        """``base_anchors[level_idx]`` on ``device`` in ``dtype``, copied there once and kept:
        a copy from host memory in every training step would make the host wait for the
        device's queue each time."""
        source = self.base_anchors[level_idx]
        device = torch.device(device)
        if device.type == 'cpu':
            return source.to(dtype)
        cache = self.__dict__.setdefault('_base_anchors_on_device', {})
        key = (level_idx, device, dtype)
        cached = cache.get(key)
        if cached is None or cached[0] is not source:
            cached = cache[key] = (source, source.to(device=device, dtype=dtype))
        return cached[1]

    @property
    def num_base_priors(self) -> List[int]:
        """list[int]: Anchors per feature-map location, one entry per level."""
        return [anchors.size(0) for anchors in self.base_anchors]

    @property
    def num_base_anchors(self) -> List[int]:
        """list[int]: Alias of ``num_base_priors`` (MMDetection's older name)."""
        return self.num_base_priors

    def gen_base_anchors(self) -> List[Tensor]:
        """Base anchors of every level.

        Returns:
            list[Tensor]: One (A, 4) tensor per level, around the cell at (0, 0).
        """
        return [
            self.gen_single_level_base_anchors(
                base_size,
                scales=self.scales,
                ratios=self.ratios,
                center=None if self.centers is None else self.centers[level])
            for level, base_size in enumerate(self.base_sizes)
        ]

    def gen_single_level_base_anchors(self,
                                      base_size: Union[int, float],
                                      scales: Tensor,
                                      ratios: Tensor,
                                      center: Optional[Tuple[float, float]] = None) -> Tensor:
        """Base anchors of one level.

        Args:
            base_size (int | float): Side of the anchor at scale 1, ratio 1.
            scales (Tensor): (S,) scales.
            ratios (Tensor): (R,) height / width ratios.
            center (tuple[float, float], optional): (x, y) centre.

        Returns:
            Tensor: (R * S, 4) anchors; with ``scale_major`` index r * S + s,
            otherwise s * R + r.
        """
        if center is None:
            x_center = y_center = self.center_offset * base_size
        else:
            x_center, y_center = center
        # sqrt keeps the area fixed while h / w = ratio.
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (base_size * w_ratios[:, None] * scales[None, :]).view(-1)
            hs = (base_size * h_ratios[:, None] * scales[None, :]).view(-1)
        else:
            ws = (base_size * scales[:, None] * w_ratios[None, :]).view(-1)
            hs = (base_size * scales[:, None] * h_ratios[None, :]).view(-1)
        return torch.stack(
            [x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs],
            dim=-1)

    def _check_levels(self, featmap_sizes: Sequence) -> None:
        if len(featmap_sizes) != self.num_levels:
            raise AssertionValueError(f'AnchorGenerator: got {len(featmap_sizes)} feature map '
                                      f'sizes for {self.num_levels} levels '
                                      f'(strides={self.strides})')

    def grid_priors(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    dtype: torch.dtype = torch.float32,
                    device: DeviceType = 'cpu') -> List[Tensor]:
        """Anchors of every level.

        Args:
            featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
            dtype (torch.dtype): Dtype of the anchors. Defaults to float32.
            device (str | torch.device): Device of the anchors.

        Returns:
            list[Tensor]: One (h * w * A, 4) tensor per level; see
            ``single_level_grid_priors`` for the order.
        """
        self._check_levels(featmap_sizes)
        return [
            self.single_level_grid_priors(featmap_sizes[level], level, dtype=dtype, device=device)
            for level in range(self.num_levels)
        ]

    def single_level_grid_priors(self,
                                 featmap_size: Tuple[int, int],
                                 level_idx: int,
                                 dtype: torch.dtype = torch.float32,
                                 device: DeviceType = 'cpu') -> Tensor:
        """Anchors of one level.

        Args:
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            level_idx (int): Level index.
            dtype (torch.dtype): Dtype of the anchors. Defaults to float32.
            device (str | torch.device): Device of the anchors.

        Returns:
            Tensor | HorizontalBoxes: (h * w * A, 4), boxes with
            ``use_box_type``; the anchor at row y, column x, base anchor a is
            at index (y * w + x) * A + a.
        """
        base_anchors = self.base_anchors_on(level_idx, device, dtype)
        anchors = self.single_level_grid_anchors(base_anchors, featmap_size,
                                                 self.strides[level_idx], device=device)
        return HorizontalBoxes(anchors, clone=False) if self.use_box_type else anchors

    def grid_anchors(self, featmap_sizes: Sequence[Tuple[int, int]],
                     device: DeviceType = 'cpu') -> List[Tensor]:
        """MMDetection's older name of ``grid_priors``: float32 tensors, whatever
        ``use_box_type`` says.

        Args:
            featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
            device (str | torch.device): Device of the anchors.

        Returns:
            list[Tensor]: One (h * w * A, 4) tensor per level.
        """
        self._check_levels(featmap_sizes)
        return [
            self.single_level_grid_anchors(self.base_anchors_on(level, device, base.dtype), size,
                                           stride, device=device)
            for level, (base, size, stride) in enumerate(
                zip(self.base_anchors, featmap_sizes, self.strides))
        ]

    @staticmethod
    def single_level_grid_anchors(base_anchors: Tensor,
                                  featmap_size: Tuple[int, int],
                                  stride: Tuple[int, int] = (16, 16),
                                  device: DeviceType = 'cpu') -> Tensor:
        """Tile ``base_anchors`` over a feature map.

        Args:
            base_anchors (Tensor): (A, 4) anchors of the cell at (0, 0); the
                result has their dtype.
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            stride (tuple[int, int]): (w, h) stride of the level in pixels.
                Defaults to (16, 16).
            device (str | torch.device): Device of the anchors.

        Returns:
            Tensor: (h * w * A, 4); the anchor at row y, column x, base anchor
            a is at index (y * w + x) * A + a.
        """
        base_anchors = base_anchors.to(device)
        dtype = base_anchors.dtype
        feat_h, feat_w = featmap_size
        stride_w, stride_h = stride
        shift_x = torch.arange(0, feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device).to(dtype) * stride_h
        shift_yy, shift_xx = torch.meshgrid(shift_y, shift_x, indexing='ij')
        shift_xx, shift_yy = shift_xx.reshape(-1), shift_yy.reshape(-1)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)  # (h * w, 4)
        return (shifts[:, None, :] + base_anchors[None, :, :]).view(-1, 4)

    def sparse_priors(self,
                      prior_idxs: Tensor,
                      featmap_size: Tuple[int, int],
                      level_idx: int,
                      dtype: torch.dtype = torch.float32,
                      device: DeviceType = 'cpu') -> Tensor:
        """The anchors at given flat indices of one level, without the full grid.

        Args:
            prior_idxs (Tensor): (M,) long indices into the level's
                ``single_level_grid_priors`` output.
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            level_idx (int): Level index.
            dtype (torch.dtype): Dtype of the anchors.
            device (str | torch.device): Device of the anchors.

        Returns:
            Tensor: (M, 4) anchors.
        """
        height, width = featmap_size
        num_base = self.num_base_priors[level_idx]
        stride_w, stride_h = self.strides[level_idx]
        base_ids = prior_idxs % num_base
        x = (prior_idxs // num_base) % width * stride_w
        y = (prior_idxs // width // num_base) % height * stride_h
        shifts = torch.stack([x, y, x, y], dim=1).to(dtype).to(device)
        return shifts + self.base_anchors_on(level_idx, device, dtype)[base_ids, :]

    def valid_flags(self,
                    featmap_sizes: Sequence[Tuple[int, int]],
                    pad_shape: Tuple[int, ...],
                    device: DeviceType = 'cpu') -> List[Tensor]:
        """Which anchors sit on feature cells that cover the padded image.

        A batch is padded to its largest image, so a feature map may be larger
        than ``ceil(pad_shape / stride)`` of a given image; anchors on the
        extra cells are invalid for that image.

        Args:
            featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
            pad_shape (tuple): (h, w, ...) of the image after padding.
            device (str | torch.device): Device of the flags.

        Returns:
            list[Tensor]: One (h * w * A,) bool tensor per level, in the order
            of ``grid_priors``.
        """
        self._check_levels(featmap_sizes)
        return grid_valid_flags(featmap_sizes, self.strides, pad_shape, self.num_base_priors,
                                device=device)

    def single_level_valid_flags(self,
                                 featmap_size: Tuple[int, int],
                                 valid_size: Tuple[int, int],
                                 num_base_anchors: int,
                                 device: DeviceType = 'cpu') -> Tensor:
        """Valid flags of one level.

        Args:
            featmap_size (tuple[int, int]): (h, w) of the feature map.
            valid_size (tuple[int, int]): (h, w) of its valid top-left part.
            num_base_anchors (int): A, anchors per location.
            device (str | torch.device): Device of the flags.

        Returns:
            Tensor: (h * w * A,) bool.
        """
        return single_level_grid_valid_flags(featmap_size, valid_size, num_base_anchors,
                                             device=device)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(strides={self.strides}, ratios={self.ratios.tolist()}, '
                f'scales={self.scales.tolist()}, base_sizes={self.base_sizes}, '
                f'scale_major={self.scale_major}, octave_base_scale={self.octave_base_scale}, '
                f'scales_per_octave={self.scales_per_octave}, centers={self.centers}, '
                f'center_offset={self.center_offset})')


def grid_valid_flags(featmap_sizes: Sequence[Tuple[int, int]],
                     strides: Sequence[Tuple[int, int]],
                     pad_shape: Tuple[int, ...],
                     num_base_priors: Sequence[int],
                     device: DeviceType = 'cpu') -> List[Tensor]:
    """Which priors of a grid sit on feature cells that cover the padded image.

    A batch is padded to its largest image, so a feature map may be larger
    than ``ceil(pad_shape / stride)`` of a given image; priors on the extra
    cells are invalid for that image.

    Args:
        featmap_sizes (list[tuple[int, int]]): (h, w) of each level.
        strides (list[tuple[int, int]]): (w, h) stride of each level.
        pad_shape (tuple): (h, w, ...) of the image after padding.
        num_base_priors (list[int]): Priors per location of each level.
        device (str | torch.device): Device of the flags.

    Returns:
        list[Tensor]: One (h * w * A,) bool tensor per level.
    """
    img_h, img_w = pad_shape[:2]
    flags = []
    for (feat_h, feat_w), (stride_w, stride_h), num_base in zip(featmap_sizes, strides,
                                                                num_base_priors):
        valid_h = min(int(math.ceil(img_h / stride_h)), feat_h)
        valid_w = min(int(math.ceil(img_w / stride_w)), feat_w)
        flags.append(single_level_grid_valid_flags((feat_h, feat_w), (valid_h, valid_w),
                                                   num_base, device=device))
    return flags


def single_level_grid_valid_flags(featmap_size: Tuple[int, int], valid_size: Tuple[int, int],
                                  num_base_priors: int, device: DeviceType = 'cpu') -> Tensor:
    """(h * w * A,) bool: True for the priors on the top-left ``valid_size``
    (h, w) part of an (h, w) feature map with A priors per location."""
    feat_h, feat_w = featmap_size
    valid_h, valid_w = valid_size
    if valid_h > feat_h or valid_w > feat_w:
        raise AssertionValueError(f'valid_size {valid_size} exceeds featmap_size {featmap_size}')
    valid_y = torch.arange(feat_h, device=device) < valid_h
    valid_x = torch.arange(feat_w, device=device) < valid_w
    valid = valid_y[:, None] & valid_x[None, :]  # (h, w)
    return valid.reshape(-1, 1).expand(-1, num_base_priors).reshape(-1)
