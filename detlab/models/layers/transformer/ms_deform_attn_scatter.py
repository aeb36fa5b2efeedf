"""The value's gradient of multi-scale deformable attention, gathered per value row.

Every sampling point sends its query's output gradient, times attention weight
times bilinear weight, to the four value positions around it.
``grid_sample``'s backward does this by adding to the map one channel at a
time, point by point; here the points are sorted by their top-left corner
once, for all levels, heads and images together, and ``F.embedding_bag``
sums each corner's contributions as whole ``head_dims`` rows (a value row is
one head's channels at one position, contiguous in the
``(B, S, heads, head_dims)`` layout). Each corner's sums then land on the map
shifted by that corner's offset. The sums run in another order than
``grid_sample``'s, so the gradient agrees with it to float rounding.
"""
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# The four bilinear corners as (dy, dx) offsets from the top-left one.
_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def deformable_attn_value_grad(grad_output: Tensor, shapes: List[Tuple[int, int]],
                               sampling_locations: Tensor, attention_weights: Tensor,
                               num_value: int) -> Tensor:
    """Gradient of ``multi_scale_deformable_attn``'s output with respect to ``value``.

    Args:
        grad_output (Tensor): (B, Q, heads * head_dims).
        shapes (list[tuple[int, int]]): ``H_l, W_l`` of each level.
        sampling_locations (Tensor): (B, Q, heads, L, P, 2) ``x, y`` in [0, 1].
        attention_weights (Tensor): (B, Q, heads, L, P).
        num_value (int): S, the value positions of all levels.

    Returns:
        Tensor: (B, S, heads, head_dims).
    """
    bs, num_queries, num_heads, num_levels, num_points, _ = sampling_locations.shape
    grad_rows = grad_output.reshape(bs * num_queries * num_heads, -1)  # (b, q, head) rows
    head_dims = grad_rows.shape[1]
    device = sampling_locations.device
    # Each level padded by one row and column above and left, so that every
    # point touching the map has its top-left corner in the padded grid.
    padded = [(h + 1) * (w + 1) for h, w in shapes]
    padded_starts = [sum(padded[:level]) for level in range(num_levels)]
    num_padded = sum(padded)
    width = torch.tensor([w for _, w in shapes], device=device).view(-1, 1)
    height = torch.tensor([h for h, _ in shapes], device=device).view(-1, 1)
    size = torch.stack([width, height], -1).to(sampling_locations.dtype)  # (L, 1, 2)
    # Pixel coordinates as grid_sample computes them for align_corners=False.
    pixel = sampling_locations * size - 0.5
    top_left = pixel.floor()
    frac = pixel - top_left
    x0 = top_left[..., 0].long()
    y0 = top_left[..., 1].long()
    inside_x = ((x0 >= 0) & (x0 < width), (x0 >= -1) & (x0 < width - 1))  # x0, x0 + 1
    inside_y = ((y0 >= 0) & (y0 < height), (y0 >= -1) & (y0 < height - 1))
    weight_x = (1 - frac[..., 0], frac[..., 0])
    weight_y = (1 - frac[..., 1], frac[..., 1])
    # Points wholly outside the map get a clamped key; all their weights are zero.
    position = (torch.tensor(padded_starts, device=device).view(-1, 1) +
                (torch.minimum(y0.clamp(min=-1), height - 1) + 1) * (width + 1) +
                torch.minimum(x0.clamp(min=-1), width - 1) + 1)
    batch = torch.arange(bs, device=device).view(bs, 1, 1, 1, 1) * num_padded
    head = torch.arange(num_heads, device=device).view(1, 1, num_heads, 1, 1)
    key = ((batch + position) * num_heads + head).view(-1)
    order = key.argsort()
    counts = torch.bincount(key, minlength=bs * num_padded * num_heads)
    offsets = counts.cumsum(0) - counts
    bag_of_point = order.div(num_levels * num_points, rounding_mode='floor')
    grad_value = grad_rows.new_zeros(bs, num_value, num_heads, head_dims)
    value_start = 0
    sums = []
    for dy, dx in _CORNERS:
        corner_weight = attention_weights * weight_x[dx] * weight_y[dy] * (
            inside_x[dx] & inside_y[dy])
        sums.append(F.embedding_bag(bag_of_point, grad_rows, offsets,
                                    per_sample_weights=corner_weight.view(-1)[order],
                                    mode='sum').view(bs, num_padded, num_heads, head_dims))
    for level, (h, w) in enumerate(shapes):
        grad_level = grad_value[:, value_start:value_start + h * w].view(
            bs, h, w, num_heads, head_dims)
        for (dy, dx), corner_sums in zip(_CORNERS, sums):
            # A corner at (dy, dx) from the top-left one at padded (i, j) is pixel (i + dy - 1, j + dx - 1).
            level_sums = corner_sums[:, padded_starts[level]:padded_starts[level] +
                                     padded[level]].view(bs, h + 1, w + 1, num_heads, head_dims)
            grad_level += level_sums[:, 1 - dy:1 - dy + h, 1 - dx:1 - dx + w]
        value_start += h * w
    return grad_value
