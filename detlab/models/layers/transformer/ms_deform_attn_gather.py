"""Multi-scale deformable attention as gathers of whole value rows.

A value row is one head's channels at one position: ``value`` of shape
(B, S, heads, head_dims) is ``B * S * heads`` contiguous rows of ``head_dims``
values. Every sampling point reads its four bilinear corners (zero padding,
``align_corners=False`` as in ``grid_sample``) as rows, for all levels, heads
and images at once, so no level is copied into an image layout:

- forward: one ``F.embedding_bag`` over bags of ``levels * points * 4``
  corners per query and head, each corner weighted by attention weight times
  bilinear weight;
- the value's gradient: the points sorted once by their top-left corner, and
  one ``F.embedding_bag`` per corner that sums the weighted output-gradient
  rows landing on each value row (``grid_sample``'s backward scatters channel
  by channel, point by point);
- the attention weights' and locations' gradients: each corner's value row
  dotted with its query's output gradient (``torch.sparse.sampled_addmm``,
  one dot per corner), times the bilinear weights or their slopes.

The sums run in another order than ``grid_sample``'s, so the numbers agree
with it to float rounding, not bit for bit.
"""
import warnings
from typing import List, NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function

# The four bilinear corners as (dy, dx) offsets from the top-left one.
_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


class Corners(NamedTuple):
    """Every sampling point's four bilinear corners.

    The points are laid out as (B * Q * heads, L * P) (a view of the
    (B, Q, heads, L, P) locations); a corner axis of 4 is (dy, dx) =
    (0, 0), (0, 1), (1, 0), (1, 1) from the top-left corner, a side axis of 2
    the smaller or larger x (y).

    Attributes:
        row: (B * Q * heads, 4, L * P) int32 or int64, the corner's row of
            ``value.view(B * S * heads, head_dims)`` (some row in range where
            the corner is off the map; its weights are zero).
        weight_x, weight_y: (B * Q * heads, 2, L * P) bilinear weight along x
            (y) of each side, zero off the map; a corner's weight is
            ``weight_y[:, dy] * weight_x[:, dx]``.
        slope_x, slope_y: (B * Q * heads, 2, L * P) their derivatives in the
            level's pixel x (y).
        top_left: (B * Q * heads, L * P) the point's top-left corner as a row
            of the levels padded by one row and column above and left (the
            key by which the value's gradient sorts the points).
        num_padded: positions of all levels so padded.
    """
    row: Tensor
    weight_x: Tensor
    weight_y: Tensor
    slope_x: Tensor
    slope_y: Tensor
    top_left: Tensor
    num_padded: int

    def weights(self, attention_weights: Tensor) -> Tensor:
        """(B * Q * heads, 4, L * P) each corner's bilinear weight times its
        point's attention weight (B, Q, heads, L, P)."""
        weight_y = self.weight_y * attention_weights.view(self.top_left.shape)[:, None]
        return (weight_y[:, :, None] * self.weight_x[:, None]).flatten(1, 2)


def bilinear_corners(shapes: List[Tuple[int, int]], sampling_locations: Tensor) -> Corners:
    """The corners of ``sampling_locations`` (B, Q, heads, L, P, 2), ``x, y``
    in [0, 1] of each level's ``H_l, W_l`` in ``shapes``.

    Each level's sizes enter as vectors over the L * P columns: broadcast
    over a last dimension of P, every step would run in strides of P.
    """
    bs, _, num_heads, num_levels, num_points, _ = sampling_locations.shape
    device = sampling_locations.device
    num_value = sum(h * w for h, w in shapes)
    padded = [(h + 1) * (w + 1) for h, w in shapes]
    num_padded = sum(padded)
    index_dtype = (torch.int32 if bs * max(num_value, num_padded) * num_heads < 2**31
                   else torch.int64)

    def per_column(values, dtype=index_dtype):  # (L * P,): each level's value P times
        return torch.tensor(values, dtype=dtype, device=device).repeat_interleave(num_points)

    width = per_column([w for _, w in shapes])
    height = per_column([h for h, _ in shapes])
    location = sampling_locations.reshape(-1, num_levels * num_points, 2)
    # Pixel coordinates as grid_sample computes them for align_corners=False.
    x = location[..., 0] * width - 0.5
    y = location[..., 1] * height - 0.5
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    sign = torch.tensor([[-1.0], [1.0]], dtype=x.dtype, device=device)
    # Sides x0 and x0 + 1 (y0 and y0 + 1): inside the map, weight, slope.
    inside_x = torch.stack([(x >= 0) & (x < width), (x >= -1) & (x < width - 1)], 1)
    inside_y = torch.stack([(y >= 0) & (y < height), (y >= -1) & (y < height - 1)], 1)
    weight_x = torch.stack([1 - fx, fx], 1) * inside_x
    weight_y = torch.stack([1 - fy, fy], 1) * inside_y
    x0, y0 = x0.to(index_dtype), y0.to(index_dtype)
    # b * S * heads + head of every (b, q, head) row.
    batch_head = torch.arange(num_heads, dtype=index_dtype, device=device).repeat(bs, 1)
    batch_head = batch_head + torch.arange(bs, dtype=index_dtype, device=device)[:, None] * (
        num_value * num_heads)
    batch_head = batch_head[:, None].expand(bs, location.shape[0] // (bs * num_heads),
                                            num_heads).reshape(-1, 1)
    level_start = per_column([sum(h * w for h, w in shapes[:level])
                              for level in range(num_levels)])
    top_left_row = (level_start + y0 * width + x0) * num_heads + batch_head
    corner_step = torch.stack([torch.zeros_like(width), torch.ones_like(width), width,
                               width + 1]) * num_heads  # (4, L * P)
    row = (top_left_row[:, None] + corner_step).clamp_(0, bs * num_value * num_heads - 1)
    # Points wholly off the map get a clamped key; all their weights are zero.
    padded_start = per_column([sum(padded[:level]) for level in range(num_levels)])
    key = (padded_start + (torch.minimum(y0.clamp_(min=-1), height - 1) + 1) * (width + 1) +
           torch.minimum(x0.clamp_(min=-1), width - 1) + 1)
    batch_padded = (batch_head // (num_value * num_heads)) * (num_padded * num_heads) + (
        batch_head % num_heads)
    return Corners(row, weight_x, weight_y, inside_x * sign, inside_y * sign,
                   key * num_heads + batch_padded, num_padded)


def value_grad_by_rows(grad_rows: Tensor, corners: Corners, corner_weights: Tensor,
                       shapes: List[Tuple[int, int]], value_shape: torch.Size) -> Tensor:
    """The value's gradient: ``corner_weights`` (B * Q * heads, 4, L * P)
    times the output-gradient row of the point's query and head, summed onto
    each corner's value row.

    Args:
        grad_rows (Tensor): (B * Q * heads, head_dims) output gradient.
        value_shape (torch.Size): (B, S, heads, head_dims).

    Returns:
        Tensor: ``value_shape``.
    """
    bs, num_value, num_heads, head_dims = value_shape
    key = corners.top_left.view(-1)
    order = key.argsort()
    counts = torch.bincount(key, minlength=bs * corners.num_padded * num_heads)
    offsets = counts.cumsum(0) - counts
    query_of_point = order.div(corners.top_left.shape[1], rounding_mode='floor')
    sorted_weights = corner_weights.transpose(0, 1).reshape(4, -1).index_select(1, order)
    sums = [F.embedding_bag(query_of_point, grad_rows, offsets,
                            per_sample_weights=sorted_weights[corner],
                            mode='sum').view(bs, corners.num_padded, num_heads, head_dims)
            for corner in range(4)]
    grad_value = grad_rows.new_zeros(value_shape)
    value_start = padded_start = 0
    for h, w in shapes:
        grad_level = grad_value[:, value_start:value_start + h * w].view(
            bs, h, w, num_heads, head_dims)
        for (dy, dx), corner_sums in zip(_CORNERS, sums):
            # The corner (dy, dx) of a point whose top-left corner is at padded
            # (i, j) is the level's pixel (i + dy - 1, j + dx - 1).
            level_sums = corner_sums[:, padded_start:padded_start + (h + 1) * (w + 1)].view(
                bs, h + 1, w + 1, num_heads, head_dims)
            grad_level += level_sums[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        value_start += h * w
        padded_start += (h + 1) * (w + 1)
    return grad_value


class GatherDeformableAttnFunction(Function):
    """Forward and backward of the gather formulation (see the module doc)."""

    @staticmethod
    def forward(ctx, value: Tensor, shapes: List[Tuple[int, int]], sampling_locations: Tensor,
                attention_weights: Tensor) -> Tensor:
        bs, num_value, num_heads, head_dims = value.shape
        num_queries = sampling_locations.shape[1]
        corners = bilinear_corners(shapes, sampling_locations)
        corner_weights = corners.weights(attention_weights)
        bags = bs * num_queries * num_heads
        output = F.embedding_bag(corners.row.view(bags, -1),
                                 value.detach().reshape(bs * num_value * num_heads, head_dims),
                                 per_sample_weights=corner_weights.view(bags, -1), mode='sum')
        ctx.save_for_backward(value, attention_weights, corner_weights, *corners[:-1])
        ctx.shapes, ctx.num_padded = shapes, corners.num_padded
        return output.view(bs, num_queries, num_heads * head_dims)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        value, attention_weights, corner_weights, *saved = ctx.saved_tensors
        corners = Corners(*saved, ctx.num_padded)
        head_dims = value.shape[-1]
        rows = value.detach().reshape(-1, head_dims)
        grad_rows = grad_output.reshape(-1, head_dims).contiguous()  # one per query and head
        grad_value = value_grad_by_rows(grad_rows, corners, corner_weights, ctx.shapes,
                                        value.shape)
        # One dot per corner: its value row with its query's output-gradient row.
        # sampled_addmm takes float32 and float64 only: bf16 or fp16 rows (a model under
        # CPU autocast, or cast to half) are dotted in float32 and the dots cast back.
        dot_dtype = torch.promote_types(rows.dtype, torch.float32)
        per_query = corners.row[0].numel()
        with warnings.catch_warnings():  # torch calls its sparse CSR layout beta
            warnings.simplefilter('ignore', UserWarning)
            pattern = torch.sparse_csr_tensor(
                torch.arange(0, corners.row.numel() + 1, per_query, dtype=corners.row.dtype,
                             device=value.device),
                corners.row.view(-1), rows.new_zeros(corners.row.numel(), dtype=dot_dtype),
                (grad_rows.shape[0], rows.shape[0]), check_invariants=False)
        dots = torch.sparse.sampled_addmm(pattern, grad_rows.to(dot_dtype), rows.t().to(dot_dtype),
                                          beta=0.0).values().view(corners.row.shape).to(rows.dtype)
        dots = dots.view(-1, 2, 2, dots.shape[-1])  # (B * Q * heads, dy, dx, L * P)
        along_x = (dots * corners.weight_y[:, :, None]).sum(1)  # (B * Q * heads, dx, L * P)
        along_y = (dots * corners.weight_x[:, None]).sum(2)  # (B * Q * heads, dy, L * P)
        grad_weights = (along_y * corners.weight_y).sum(1).view_as(attention_weights)
        num_points = attention_weights.shape[-1]
        size = torch.tensor([[w, h] for h, w in ctx.shapes], dtype=dots.dtype,
                            device=dots.device).repeat_interleave(num_points, 0)  # (L * P, 2)
        grad_locations = torch.stack([(along_x * corners.slope_x).sum(1),
                                      (along_y * corners.slope_y).sum(1)], -1) * (
            attention_weights.view(-1, size.shape[0], 1) * size)
        grad_locations = grad_locations.view(*attention_weights.shape, 2)
        return grad_value, None, grad_locations, grad_weights
