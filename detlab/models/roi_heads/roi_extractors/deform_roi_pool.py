"""Deformable RoI pooling (Dai et al., 2017) as mmcv's ``DeformRoIPool``,
``DeformRoIPoolPack`` and ``ModulatedDeformRoIPoolPack``, in PyTorch.

mmcv computes these with a compiled kernel (CUDA only); here the same
arithmetic runs as tensor operations on any device. For RoI ``k`` (image
pixels ``x1, y1, x2, y2``), output bin ``(ph, pw)`` and sample ``(iy, ix)``::

    start_x = x1 * spatial_scale - 0.5        (no rounding, no minimum size)
    width   = (x2 * spatial_scale - 0.5) - start_x
    bin_w   = width / pooled_w
    grid_w  = sampling_ratio if > 0 else ceil(width / pooled_w)
    x = start_x + gamma * width * offset[k, 0, ph, pw] + pw * bin_w
        + (ix + 0.5) * bin_w / grid_w

and likewise in y with ``offset[k, 1]``. Each bin is the mean of its
``grid_h * grid_w`` bilinear samples (0 for a RoI with no samples). A sample
with ``y < -1``, ``y > H``, ``x < -1`` or ``x > W`` reads 0; otherwise a
coordinate at or below 0 is read at 0, and one at or past the last row
(column) reads that row (column).

Gradients are the ones mmcv's backward kernel returns: to the features, the
bilinear weights above; to the offsets, ``gamma * width`` (``height``) times
the derivative of the bilinear formula at the unclamped sample coordinate,
taken with the clamped corner indices. Inside the map that is the derivative
of the forward; at its border mmcv's differs (the x offset's is 0 for samples
at or past the last row, the y offset's at or past the last column, and in the
band ``(-1, 0]`` both extrapolate the bilinear formula), and detlab returns
mmcv's. The RoIs get no gradient, as in mmcv.

Coordinates and bilinear weights are computed in float32 (float64 for float64
RoIs) whatever the feature dtype, also for float16 and bfloat16 features,
where mmcv's kernel computes them in the feature dtype; the sums run in the
feature dtype.

The samples of a bin are summed by ``F.embedding_bag`` over the feature map
laid out as (B * H * W, C) rows, so no (RoIs, C, bins, samples) tensor is
made. With ``sampling_ratio=0`` the most samples any RoI takes sets the
padded sample count, which reads two integers from the device once per call
(a host synchronisation); a positive ``sampling_ratio`` needs none.
"""
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from detlab.registry import MODELS


class RoIGrid(NamedTuple):
    """Where each RoI's bins and samples lie on the feature map (feature pixels).

    Attributes:
        batch (Tensor): (K,) long image index of each RoI.
        start (Tensor): (K, 2) ``start_x, start_y`` of each RoI.
        size (Tensor): (K, 2) ``width, height`` of each RoI.
        samples (Tensor): (K, 2) long samples per bin side, ``grid_w, grid_h``
            (0 or less: the RoI has no samples).
        max_samples (tuple[int, int]): Largest ``grid_w``, ``grid_h`` over the RoIs,
            at least 1.
    """
    batch: Tensor
    start: Tensor
    size: Tensor
    samples: Tensor
    max_samples: Tuple[int, int]


def roi_grid(rois: Tensor, output_size: Tuple[int, int], spatial_scale: float,
             sampling_ratio: int) -> RoIGrid:
    """The sampling geometry of mmcv's deform_roi_pool kernel for each RoI.

    Args:
        rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2`` in image pixels.
        output_size (tuple[int, int]): (pooled_h, pooled_w).
        spatial_scale (float): Feature pixels per image pixel.
        sampling_ratio (int): Samples per bin side; 0 or less: ``ceil(size / bins)``.

    Returns:
        RoIGrid: Coordinates in float32 (float64 for float64 RoIs).
    """
    if rois.dim() != 2 or rois.size(1) != 5:
        raise ValueError('deform_roi_pool: rois must be (K, 5) rows of batch_index, x1, y1, '
                         f'x2, y2; got shape {tuple(rois.shape)}')
    rois = rois.detach()
    if rois.dtype != torch.float64:
        rois = rois.float()
    corners = rois[:, 1:] * spatial_scale - 0.5  # x1, y1, x2, y2
    start = corners[:, :2]
    size = corners[:, 2:] - start
    bins = size.new_tensor([output_size[1], output_size[0]])
    if sampling_ratio > 0:
        samples = torch.full_like(size, sampling_ratio, dtype=torch.long)
        max_samples = (sampling_ratio, sampling_ratio)
    else:
        # The kernel takes ceilf of the quotient computed in its float type. A RoI with
        # a non-finite corner gets no samples (pools to 0) instead of a sample count
        # cast from NaN or infinity.
        quotient = (size / bins).float()
        samples = torch.where(torch.isfinite(quotient), quotient.ceil(),
                              torch.zeros_like(quotient)).long()
        if samples.numel():
            # At least one padded sample, all masked when no RoI has any, keeps the
            # output in the autograd graph.
            max_samples = tuple(samples.amax(0).clamp(min=1).tolist())
        else:
            max_samples = (1, 1)
    return RoIGrid(rois[:, 0].long(), start, size, samples, max_samples)


class AxisTerms(NamedTuple):
    """One axis of mmcv's ``bilinear_interpolate`` for every RoI, bin and sample,
    each (K, PH | 1, PW | 1, S); every float term is 0 for a padded sample or one
    outside ``[-1, length]``.

    Attributes:
        low, high (Tensor): long clamped corner indices.
        weight_low, weight_high (Tensor): bilinear weights of those corners.
        dist_low, dist_high (Tensor): ``u - low`` and ``high - u`` for the
            unclamped coordinate ``u`` (mmcv's offset gradient uses them).
        mask (Tensor): 1 where the sample is read on this axis.
    """
    low: Tensor
    high: Tensor
    weight_low: Tensor
    weight_high: Tensor
    dist_low: Tensor
    dist_high: Tensor
    mask: Tensor


def _axis_terms(grid: RoIGrid, axis: int, bins: int, length: int,
                shift: Optional[Tensor]) -> AxisTerms:
    """Sample coordinates on one axis (0: x along PW, 1: y along PH), evaluated in
    the kernel's order ``(start + shift) + bin * bin_size + (i + 0.5) * bin_size / grid``,
    and their bilinear terms."""
    start, size = grid.start[:, axis], grid.size[:, axis]
    max_samples = grid.max_samples[axis]
    bin_size = size / bins
    steps = torch.arange(max_samples, device=start.device, dtype=start.dtype)
    # Padded samples of a RoI with fewer samples are masked; dividing by at least 1
    # keeps their coordinates finite.
    divisor = grid.samples[:, axis].clamp(min=1).to(start.dtype)
    fraction = (steps + 0.5) * bin_size[:, None] / divisor[:, None]  # (K, S)
    bin_offsets = torch.arange(bins, device=start.device, dtype=start.dtype) * bin_size[:, None]
    # To (K, PH, PW) layout: x varies along PW (dim 2), y along PH (dim 1).
    bin_offsets = bin_offsets[:, None, :] if axis == 0 else bin_offsets[:, :, None]
    origin = start[:, None, None] if shift is None else start[:, None, None] + shift
    coords = (origin + bin_offsets)[..., None] + fraction[:, None, None, :]
    in_grid = (steps < grid.samples[:, axis, None])[:, None, None, :]
    valid = in_grid & (coords >= -1) & (coords <= length)
    clamped = torch.where(valid, coords.clamp(min=0), torch.zeros_like(coords))
    low = clamped.floor()
    at_end = low >= length - 1
    low = torch.where(at_end, torch.full_like(low, length - 1), low)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(clamped), clamped - low)
    mask = valid.to(coords.dtype)
    # where, not a product with the mask: a non-finite coordinate must give 0, not NaN.
    zero = torch.zeros_like(coords)
    return AxisTerms(low.long(), high.long(), (1 - frac) * mask, frac * mask,
                     torch.where(valid, coords - low, zero),
                     torch.where(valid, high - coords, zero), mask)


def _corners(y_pair, x_pair):
    """Spread per-axis (for low, for high) terms over the four corners in mmcv's
    order (y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high):
    (K, PH, PW, S_h, 1, 4) and (K, PH, PW, 1, S_w, 4), which broadcast together."""
    ys = torch.stack((y_pair[0], y_pair[0], y_pair[1], y_pair[1]), -1)[..., :, None, :]
    xs = torch.stack((x_pair[0], x_pair[1], x_pair[0], x_pair[1]), -1)[..., None, :, :]
    return ys, xs


def _pool(table: Tensor, shape: Tuple[int, int, int, int], grid: RoIGrid,
          offset: Optional[Tensor], output_size: Tuple[int, int], gamma: float) -> Tensor:
    """Deformable RoI pooling over a feature map laid out as embedding rows.

    Args:
        table (Tensor): (B * H * W, C) the feature map, row ``(b * H + y) * W + x``.
        shape (tuple): (B, C, H, W) of the feature map.
        grid (RoIGrid): From ``roi_grid``.
        offset (Tensor, optional): (K, 2, PH, PW) normalised offsets (x, y).
        output_size (tuple[int, int]): (PH, PW).
        gamma (float): Offset scale.

    Returns:
        Tensor: (K, C, PH, PW) in the table's dtype.
    """
    _, channels, height, width = shape
    num_rois = grid.batch.size(0)
    pooled_h, pooled_w = output_size
    shift_x = shift_y = None
    if offset is not None:
        if offset.shape != (num_rois, 2, pooled_h, pooled_w):
            want = (num_rois, 2, pooled_h, pooled_w)
            raise ValueError(f'deform_roi_pool: offset must have shape {want} (RoIs, 2, '
                             f'*output_size); got {tuple(offset.shape)}')
        # A non-finite size has no samples; 0 in its place keeps NaN out of the gradient.
        size = torch.where(torch.isfinite(grid.size), grid.size, torch.zeros_like(grid.size))
        scaled = gamma * size[:, :, None, None] * offset.to(size.dtype)
        shift_x, shift_y = scaled[:, 0], scaled[:, 1]
    # The sample coordinates carry no gradient: the offsets get theirs below, as mmcv's.
    x = _axis_terms(grid, 0, pooled_w, width, None if shift_x is None else shift_x.detach())
    y = _axis_terms(grid, 1, pooled_h, height, None if shift_y is None else shift_y.detach())
    rows, cols = _corners((y.low, y.high), (x.low, x.high))
    base = (grid.batch * (height * width))[:, None, None, None, None, None]
    samples = grid.max_samples[0] * grid.max_samples[1] * 4
    index = (base + rows * width + cols).reshape(num_rois * pooled_h * pooled_w, samples)
    count = (grid.samples[:, 0] * grid.samples[:, 1]).clamp(min=1).to(x.mask.dtype)
    norm = (1 / count)[:, None, None, None, None, None]

    def bin_sums(y_pair, x_pair) -> Tensor:
        """Per bin, the sum over samples and corners of (y term * x term / count) *
        feature: (K, PH, PW, C)."""
        ys, xs = _corners(y_pair, x_pair)
        weights = (ys * xs * norm).reshape(index.shape).to(table.dtype)
        summed = F.embedding_bag(index, table, per_sample_weights=weights, mode='sum')
        return summed.view(num_rois, pooled_h, pooled_w, channels)

    out = bin_sums((y.weight_low, y.weight_high), (x.weight_low, x.weight_high))
    if offset is not None and torch.is_grad_enabled() and offset.requires_grad:
        # mmcv's offset gradient: along x, the y distances to the clamped corners with
        # signs -, +, -, + over the four corners; along y, the x distances with signs
        # -, -, +, +. Both are linear in the features, so they are summed like the samples.
        with torch.no_grad():
            grad_x = bin_sums((y.dist_high, y.dist_low), (-x.mask, x.mask))
            grad_y = bin_sums((-y.mask, y.mask), (x.dist_high, x.dist_low))
        # Zero in value; its gradient to the offsets is mmcv's.
        moved = ((shift_x - shift_x.detach())[..., None] * grad_x +
                 (shift_y - shift_y.detach())[..., None] * grad_y)
        out = out + moved.to(out.dtype)
    # Contiguous (K, C, PH, PW) as mmcv returns it: its Pack modules and heads call .view.
    return out.permute(0, 3, 1, 2).contiguous()


def feature_table(input: Tensor) -> Tensor:
    """(B, C, H, W) -> (B * H * W, C) rows for ``_pool`` (a view for channels-last input)."""
    if input.dim() != 4:
        raise ValueError('deform_roi_pool: input must be (B, C, H, W); got shape '
                         f'{tuple(input.shape)}')
    return input.permute(0, 2, 3, 1).reshape(-1, input.size(1))


def deform_roi_pool(input: Tensor, rois: Tensor, offset: Optional[Tensor],
                    output_size: Union[int, Tuple[int, int]], spatial_scale: float = 1.0,
                    sampling_ratio: int = 0, gamma: float = 0.1) -> Tensor:
    """mmcv's ``deform_roi_pool`` (same arguments), see the module docstring.

    Args:
        input (Tensor): (B, C, H, W) feature map.
        rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2`` in image pixels.
        offset (Tensor, optional): (K, 2, PH, PW) offsets (x then y) in units
            of the RoI's size / gamma; None pools without offsets.
        output_size (int | tuple[int, int]): (PH, PW).
        spatial_scale (float): Feature pixels per image pixel.
        sampling_ratio (int): Samples per bin side; 0: adaptive.
        gamma (float): Offset scale.

    Returns:
        Tensor: (K, C, PH, PW).
    """
    output_size = _pair(output_size)
    grid = roi_grid(rois, output_size, spatial_scale, sampling_ratio)
    return _pool(feature_table(input), tuple(input.shape), grid, offset, output_size, gamma)


@MODELS.register_module()
class DeformRoIPool(nn.Module):
    """Deformable RoI pooling with given offsets, configured as mmcv's ``DeformRoIPool``.

    Args:
        output_size (int | tuple[int, int]): (PH, PW) of each output.
        spatial_scale (float): Feature pixels per image pixel (1 / stride).
        sampling_ratio (int): Samples per bin side; 0: ``ceil(roi_size / bins)``.
        gamma (float): Scale of the offsets (times the RoI's width / height).
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 0,
                 gamma: float = 0.1) -> None:
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.gamma = float(gamma)

    def forward(self, input: Tensor, rois: Tensor, offset: Optional[Tensor] = None) -> Tensor:
        """(B, C, H, W) features, (K, 5) RoIs, optional (K, 2, PH, PW) offsets
        -> (K, C, PH, PW)."""
        return deform_roi_pool(input, rois, offset, self.output_size, self.spatial_scale,
                               self.sampling_ratio, self.gamma)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, gamma={self.gamma}')


def _fc_stack(output_size: Tuple[int, int], channels: int, hidden: int,
              outputs: int, layers: int) -> nn.Sequential:
    """mmcv's fc stack on a flattened (C, PH, PW) pooling: Linear+ReLU ``layers - 1``
    times, then a zero-initialised Linear to ``outputs`` values per bin."""
    bins = output_size[0] * output_size[1]
    modules = []
    in_features = bins * channels
    for _ in range(layers - 1):
        modules += [nn.Linear(in_features, hidden), nn.ReLU(inplace=True)]
        in_features = hidden
    last = nn.Linear(in_features, bins * outputs)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*modules, last)


class _OffsetPack(DeformRoIPool):
    """What mmcv's two Pack modules share: ``offset_fc`` (3 Linear layers, the
    last zero-initialised, so the first offsets are 0) and pooling each RoI
    first without offsets, then with the offsets ``offset_fc`` predicts from it.

    Args:
        output_size (int | tuple[int, int]): (PH, PW) of each output.
        output_channels (int): Channels of the input feature map.
        deform_fc_channels (int): Hidden width of the fc layers.
        spatial_scale, sampling_ratio, gamma: As in ``DeformRoIPool``.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 output_channels: int,
                 deform_fc_channels: int = 1024,
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 0,
                 gamma: float = 0.1) -> None:
        super().__init__(output_size, spatial_scale, sampling_ratio, gamma)
        self.output_channels = output_channels
        self.deform_fc_channels = deform_fc_channels
        self.offset_fc = _fc_stack(self.output_size, output_channels, deform_fc_channels,
                                   outputs=2, layers=3)

    def pool_twice(self, input: Tensor, rois: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, C, H, W) features, (K, 5) RoIs -> the (K, C, PH, PW) pooling without
        offsets and the one with the predicted offsets. The RoI geometry and the
        feature rows are computed once for both."""
        if input.dim() == 4 and input.size(1) != self.output_channels:
            raise ValueError(f'{type(self).__name__}: input has {input.size(1)} channels; '
                             f'output_channels={self.output_channels} expects as many')
        grid = roi_grid(rois, self.output_size, self.spatial_scale, self.sampling_ratio)
        table, shape = feature_table(input), tuple(input.shape)
        plain = _pool(table, shape, grid, None, self.output_size, self.gamma)
        offset = self.offset_fc(plain.flatten(1)).view(-1, 2, *self.output_size)
        return plain, _pool(table, shape, grid, offset, self.output_size, self.gamma)


@MODELS.register_module()
class DeformRoIPoolPack(_OffsetPack):
    """Deformable RoI pooling that predicts its own offsets (mmcv's ``DeformRoIPoolPack``).

    Pools each RoI without offsets, maps that to one (x, y) offset per bin with
    ``offset_fc`` (3 Linear layers, the last zero-initialised), and pools again
    with those offsets.

    Args: as ``_OffsetPack``.
    """

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:  # type: ignore[override]
        """(B, C, H, W) features, (K, 5) RoIs -> (K, C, PH, PW)."""
        return self.pool_twice(input, rois)[1]


@MODELS.register_module()
class ModulatedDeformRoIPoolPack(_OffsetPack):
    """``DeformRoIPoolPack`` with a per-bin mask (mmcv's ``ModulatedDeformRoIPoolPack``).

    Besides the offsets, ``mask_fc`` (2 Linear layers, the last
    zero-initialised, then a sigmoid) maps the offset-free pooling to one
    weight per bin in (0, 1), which multiplies the deformed pooling.

    Args: as ``_OffsetPack``.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 output_channels: int,
                 deform_fc_channels: int = 1024,
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 0,
                 gamma: float = 0.1) -> None:
        super().__init__(output_size, output_channels, deform_fc_channels, spatial_scale,
                         sampling_ratio, gamma)
        self.mask_fc = nn.Sequential(
            *_fc_stack(self.output_size, output_channels, deform_fc_channels, outputs=1,
                       layers=2), nn.Sigmoid())

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:  # type: ignore[override]
        """(B, C, H, W) features, (K, 5) RoIs -> (K, C, PH, PW)."""
        plain, deformed = self.pool_twice(input, rois)
        mask = self.mask_fc(plain.flatten(1)).view(-1, 1, *self.output_size)
        return deformed * mask
