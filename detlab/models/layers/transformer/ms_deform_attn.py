"""Multi-scale deformable attention (Deformable DETR) in plain PyTorch.

Bilinear sampling (zero padding, ``align_corners=False``) at ``num_points``
points per query, head and level, weighted by softmaxed attention weights; no
compiled op. Two formulations: ``grid_sample`` per level (mmcv's forward bit
for bit) and a gather of value rows over all levels and heads at once
(``ms_deform_attn_gather.py``).
"""
import math
import warnings
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, constant_init, xavier_init
from torch import Tensor, nn
from torch.autograd import Function

from detlab.registry import MODELS
from .ms_deform_attn_gather import (GatherDeformableAttnFunction, bilinear_corners,
                                    value_grad_by_rows)


def _level_shapes(value_spatial_shapes) -> List[Tuple[int, int]]:
    if isinstance(value_spatial_shapes, Tensor):
        value_spatial_shapes = value_spatial_shapes.tolist()
    return [(int(h), int(w)) for h, w in value_spatial_shapes]


def multi_scale_deformable_attn(value: Tensor, value_spatial_shapes,
                                sampling_locations: Tensor,
                                attention_weights: Tensor) -> Tensor:
    """Attention-weighted bilinear samples of a multi-level value map.

    Where the queries are the value positions themselves (as many queries as
    values: an encoder's self-attention), the forward is mmcv's
    ``multi_scale_deformable_attn_pytorch`` bit for bit (the same
    ``grid_sample`` per level and the same weighted sum), because DINO's and
    two-stage Deformable DETR's query selection is a top-k over encoder scores
    whose near-ties any rounding difference reorders (``_DeformableAttnFunction``).
    Otherwise (a decoder's queries) it is the gather formulation
    (``GatherDeformableAttnFunction``), equal to mmcv's to float rounding and,
    on one CPU thread at DINO's sizes, about twice as fast forward + backward
    (benchmarks/bench_deformable_attention.py); it would be faster for the
    encoder too, but not bit for bit.

    Args:
        value (Tensor): (B, S, num_heads, head_dims), the levels flattened
            row-major one after another (S = sum of H_l * W_l).
        value_spatial_shapes (Tensor | list): (L, 2) ``H_l, W_l`` of each level.
        sampling_locations (Tensor): (B, Q, num_heads, L, P, 2) ``x, y`` in
            [0, 1] of the level's own width and height.
        attention_weights (Tensor): (B, Q, num_heads, L, P).

    Returns:
        Tensor: (B, Q, num_heads * head_dims).
    """
    shapes = _level_shapes(value_spatial_shapes)
    num_levels = sampling_locations.shape[3]
    if len(shapes) != num_levels or sum(h * w for h, w in shapes) != value.shape[1]:
        raise ValueError(f'multi_scale_deformable_attn: value_spatial_shapes {shapes} do not '
                         f'match {num_levels} levels and {value.shape[1]} values')
    if sampling_locations.shape[1] != value.shape[1]:
        # One dtype for the gathers (under autocast the value may be half, the
        # softmaxed weights float), as grid_sample's autocast rule gives.
        dtype = torch.promote_types(value.dtype, attention_weights.dtype)
        return GatherDeformableAttnFunction.apply(value.to(dtype), shapes,
                                                  sampling_locations.to(dtype),
                                                  attention_weights.to(dtype))
    return _DeformableAttnFunction.apply(value, shapes, sampling_locations, attention_weights)


class _DeformableAttnFunction(Function):
    """Per-level ``grid_sample`` and the attention-weighted sum, with a
    hand-written backward.

    The forward computes mmcv's numbers bit for bit (the samples stacked and
    weighted in place). The backward asks ``grid_sample``'s backward for the
    grid's gradient only and takes the value's from the gather formulation's
    row sums (``value_grad_by_rows``), which are faster than
    ``grid_sample``'s channel-by-channel scatter; the attention weights'
    gradient is summed over channels level by level in one reused buffer.
    """

    @staticmethod
    def forward(ctx, value: Tensor, shapes: List[Tuple[int, int]], sampling_locations: Tensor,
                attention_weights: Tensor) -> Tensor:
        bs, _, num_heads, head_dims = value.shape
        _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
        n = bs * num_heads
        value_list = value.split([h * w for h, w in shapes], dim=1)
        sampling_grids = 2 * sampling_locations - 1
        weights = attention_weights.transpose(1, 2).reshape(n, 1, num_queries, num_levels,
                                                            num_points)
        maps, grids, sampled = [], [], []
        for level, (h, w) in enumerate(shapes):
            # (B * heads, head_dims, H, W) map and (B * heads, Q, P, 2) grid of the level.
            value_l = value_list[level].flatten(2).transpose(1, 2).reshape(n, head_dims, h, w)
            grid_l = sampling_grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
            sampled.append(F.grid_sample(value_l, grid_l, mode='bilinear',
                                         padding_mode='zeros', align_corners=False))
            maps.append(value_l)
            grids.append(grid_l)
        # Stacked by a contiguous copy and weighted in place: a product written
        # level by level into the stacked layout runs in strides of num_points.
        products = torch.stack(sampled, dim=-2).mul_(weights)
        output = products.flatten(-2).sum(-1)
        ctx.save_for_backward(sampling_locations, attention_weights, weights, *maps, *grids,
                              *sampled)
        ctx.shapes = shapes
        return output.view(bs, num_heads * head_dims, num_queries).transpose(1, 2).contiguous()

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        shapes = ctx.shapes
        num_levels = len(shapes)
        sampling_locations, attention_weights, weights, *saved = ctx.saved_tensors
        maps, grids, sampled = (saved[:num_levels], saved[num_levels:2 * num_levels],
                                saved[2 * num_levels:])
        n, head_dims, num_queries, _ = sampled[0].shape
        bs, num_points = grad_output.shape[0], sampled[0].shape[-1]
        num_heads = n // bs
        grad = grad_output.transpose(1, 2).reshape(n, head_dims, num_queries)
        grad_locations = grad.new_empty(bs, num_queries, num_heads, num_levels, num_points, 2)
        grad_weights = grad.new_empty(bs, num_queries, num_heads, num_levels, num_points)
        # One buffer for every level's (B * heads, head_dims, Q, P) products.
        buffer = grad.new_empty(n, head_dims, num_queries, num_points)
        for level in range(num_levels):
            grad_weights[:, :, :, level] = torch.mul(sampled[level], grad[..., None],
                                                     out=buffer).sum(1).view(
                bs, num_heads, num_queries, num_points).transpose(1, 2)
            _, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
                torch.mul(grad[..., None], weights[:, :, :, level], out=buffer), maps[level],
                grids[level], 0, 0, False, [False, True])  # bilinear, zeros, align_corners=False
            grad_locations[:, :, :, level] = grad_grid.view(
                bs, num_heads, num_queries, num_points, 2).transpose(1, 2) * 2
        corners = bilinear_corners(shapes, sampling_locations)
        grad_value = value_grad_by_rows(
            grad_output.reshape(-1, head_dims).contiguous(), corners,
            corners.weights(attention_weights), shapes,
            (bs, sum(h * w for h, w in shapes), num_heads, head_dims))
        return grad_value, None, grad_locations, grad_weights


@MODELS.register_module()
class MultiScaleDeformableAttention(BaseModule):
    """Deformable DETR's attention, with mmcv's arguments and parameter names.

    Each query looks at ``num_points`` points per head and level around its
    reference point; ``sampling_offsets``, ``attention_weights``,
    ``value_proj`` and ``output_proj`` are the ``nn.Linear`` layers mmcv names
    so, so MMDetection checkpoints load unchanged.

    Args:
        embed_dims (int): Query and value channels. Defaults to 256.
        num_heads (int): Attention heads. Defaults to 8.
        num_levels (int): Feature levels. Defaults to 4.
        num_points (int): Sampling points per head and level. Defaults to 4.
        im2col_step (int): Kept for mmcv's CUDA kernel's configs; unused.
        dropout (float): Dropout on the output. Defaults to 0.1.
        batch_first (bool): Queries are (B, N, C) rather than (N, B, C).
        norm_cfg (dict, optional): Kept for mmcv compatibility; unused.
        init_cfg (dict, optional): mmengine initialisation config.
        value_proj_ratio (float): ``value_proj``'s width over ``embed_dims``.
    """

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                 num_points: int = 4, im2col_step: int = 64, dropout: float = 0.1,
                 batch_first: bool = False, norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None, value_proj_ratio: float = 1.0) -> None:
        super().__init__(init_cfg)
        if embed_dims % num_heads != 0:
            raise ValueError(f'MultiScaleDeformableAttention: embed_dims ({embed_dims}) must be '
                             f'divisible by num_heads ({num_heads})')
        self.norm_cfg = norm_cfg
        self.dropout = nn.Dropout(dropout)
        self.batch_first = batch_first
        self.im2col_step = im2col_step
        self.embed_dims = embed_dims
        self.num_levels = num_levels
        self.num_heads = num_heads
        self.num_points = num_points
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        value_proj_size = int(embed_dims * value_proj_ratio)
        if value_proj_size % num_heads != 0:
            warnings.warn(f'MultiScaleDeformableAttention: value_proj width {value_proj_size} '
                          f'is not divisible by num_heads ({num_heads})')
        self.value_proj = nn.Linear(embed_dims, value_proj_size)
        self.output_proj = nn.Linear(value_proj_size, embed_dims)
        self.init_weights()

    def init_weights(self) -> None:
        """mmcv's initialisation: offsets on rays around the reference point,
        uniform attention, Xavier projections."""
        constant_init(self.sampling_offsets, 0.0)
        device = self.sampling_offsets.weight.device
        thetas = torch.arange(self.num_heads, dtype=torch.float32,
                              device=device) * (2.0 * math.pi / self.num_heads)
        grid_init = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid_init = (grid_init / grid_init.abs().max(-1, keepdim=True)[0]).view(
            self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid_init *= torch.arange(1, self.num_points + 1, dtype=torch.float32,
                                  device=device).view(1, 1, -1, 1)
        self.sampling_offsets.bias.data = grid_init.view(-1)
        constant_init(self.attention_weights, val=0.0, bias=0.0)
        xavier_init(self.value_proj, distribution='uniform', bias=0.0)
        xavier_init(self.output_proj, distribution='uniform', bias=0.0)
        self._is_init = True

    def forward(self, query: Tensor, key: Optional[Tensor] = None, value: Optional[Tensor] = None,
                identity: Optional[Tensor] = None, query_pos: Optional[Tensor] = None,
                key_padding_mask: Optional[Tensor] = None,
                reference_points: Optional[Tensor] = None,
                spatial_shapes: Optional[Tensor] = None,
                level_start_index: Optional[Tensor] = None, **kwargs) -> Tensor:
        """Attend from ``query`` to the multi-level ``value``.

        Args:
            query (Tensor): (B, Q, C) with ``batch_first`` else (Q, B, C).
            value (Tensor, optional): (B, S, C) (or (S, B, C)); ``query`` if None.
            identity (Tensor, optional): Residual added to the output;
                ``query`` if None.
            query_pos (Tensor, optional): Added to ``query`` before the offsets
                and weights are predicted.
            key_padding_mask (Tensor, optional): (B, S) True at padding.
            reference_points (Tensor): (B, Q, L, 2) points or (B, Q, L, 4)
                boxes ``cx, cy, w, h`` in [0, 1].
            spatial_shapes (Tensor): (L, 2) ``H_l, W_l``.

        Returns:
            Tensor: the query's shape.
        """
        if value is None:
            value = query
        if identity is None:
            identity = query
        if query_pos is not None:
            query = query + query_pos
        if not self.batch_first:
            query = query.permute(1, 0, 2)
            value = value.permute(1, 0, 2)
        bs, num_query, _ = query.shape
        num_value = value.shape[1]
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(bs, num_value, self.num_heads, -1)
        shape = (bs, num_query, self.num_heads, self.num_levels, self.num_points)
        sampling_offsets = self.sampling_offsets(query).view(*shape, 2)
        attention_weights = self.attention_weights(query).view(
            bs, num_query, self.num_heads, self.num_levels * self.num_points).softmax(-1)
        attention_weights = attention_weights.view(*shape)
        if reference_points.shape[-1] == 2:
            offset_normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)
            sampling_locations = (
                reference_points[:, :, None, :, None, :] +
                sampling_offsets / offset_normalizer[None, None, None, :, None, :])
        elif reference_points.shape[-1] == 4:
            sampling_locations = (reference_points[:, :, None, :, None, :2] +
                                  sampling_offsets / self.num_points *
                                  reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError(f'MultiScaleDeformableAttention: the last dimension of '
                             f'reference_points must be 2 or 4, got {reference_points.shape[-1]}')
        output = multi_scale_deformable_attn(value, spatial_shapes, sampling_locations,
                                             attention_weights)
        output = self.output_proj(output)
        if not self.batch_first:
            output = output.permute(1, 0, 2)
        return self.dropout(output) + identity
