"""DAB-DETR's encoder and decoder: queries are anchor boxes ``cx, cy, w, h``
that every decoder layer refines, and whose sine embedding both positions
the queries and (scaled by the anchor's size) conditions cross-attention."""
from typing import Tuple

import torch
from torch import Tensor, nn

from .conditional_detr_layers import (ConditionalDetrTransformerDecoderLayer,
                                      drop_later_query_pos)
from .detr_layers import DetrTransformerDecoder, DetrTransformerEncoder
from .utils import MLP, coordinate_to_encoding, inverse_sigmoid

QUERY_SCALE_TYPES = ('cond_elewise', 'cond_scalar', 'fix_elewise')


class DABDetrTransformerDecoderLayer(ConditionalDetrTransformerDecoderLayer):
    """Conditional DETR's decoder layer; ``keep_query_pos`` mirrors its
    cross-attention's setting."""

    def _init_layers(self) -> None:
        super()._init_layers()
        self.keep_query_pos = self.cross_attn.keep_query_pos

    def forward(self, query: Tensor, key: Tensor, query_pos: Tensor, key_pos: Tensor,
                ref_sine_embed: Tensor = None, self_attn_masks: Tensor = None,
                cross_attn_masks: Tensor = None, key_padding_mask: Tensor = None,
                is_first: bool = False) -> Tensor:
        """Conditional DETR's layer, with MMDetection's DAB-DETR parameter order
        (``ref_sine_embed`` after ``key_pos``)."""
        return super().forward(query=query, key=key, query_pos=query_pos, key_pos=key_pos,
                               self_attn_masks=self_attn_masks,
                               cross_attn_masks=cross_attn_masks,
                               key_padding_mask=key_padding_mask,
                               ref_sine_embed=ref_sine_embed, is_first=is_first)


class DABDetrTransformerDecoder(DetrTransformerDecoder):
    """Decoder that refines anchor boxes layer by layer.

    Each layer embeds its anchors (sine, ``ref_point_head``) as the query
    positions, scales the anchors' ``x, y`` sine embedding by ``query_scale``
    (and, with ``with_modulated_hw_attn``, by the predicted over the anchor's
    width and height) for cross-attention, then moves the anchors by the
    ``reg_branches`` output in logit space. The gradient does not flow
    through the anchors from one layer to the next.

    Args:
        query_dim (int): 4 for anchor boxes, 2 for points.
        query_scale_type (str): 'cond_elewise' (an MLP per channel),
            'cond_scalar' (an MLP, one scale) or 'fix_elewise' (a learned
            per-layer vector).
        with_modulated_hw_attn (bool): Modulate cross-attention by the
            anchor's size (needs ``query_dim=4``).
        *args, **kwargs: ``DetrTransformerDecoder``'s arguments.
    """
    layer_type = DABDetrTransformerDecoderLayer

    def __init__(self, *args, query_dim: int = 4, query_scale_type: str = 'cond_elewise',
                 with_modulated_hw_attn: bool = True, **kwargs) -> None:
        if query_dim not in (2, 4):
            raise ValueError(f'DABDetrTransformerDecoder: query_dim must be 4 (anchor boxes) '
                             f'or 2 (points), got {query_dim!r}')
        if query_scale_type not in QUERY_SCALE_TYPES:
            raise ValueError(f'DABDetrTransformerDecoder: query_scale_type must be one of '
                             f'{QUERY_SCALE_TYPES}, got {query_scale_type!r}')
        if with_modulated_hw_attn and query_dim != 4:
            raise ValueError('DABDetrTransformerDecoder: with_modulated_hw_attn needs '
                             f'query_dim=4 (boxes have a size), got query_dim={query_dim}')
        self.query_dim = query_dim
        self.query_scale_type = query_scale_type
        self.with_modulated_hw_attn = with_modulated_hw_attn
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        super()._init_layers()
        dims = self.embed_dims
        if self.query_scale_type == 'cond_elewise':
            self.query_scale = MLP(dims, dims, dims, 2)
        elif self.query_scale_type == 'cond_scalar':
            self.query_scale = MLP(dims, dims, 1, 2)
        else:
            self.query_scale = nn.Embedding(self.num_layers, dims)
        self.ref_point_head = MLP(self.query_dim // 2 * dims, dims, dims, 2)
        if self.with_modulated_hw_attn:
            self.ref_anchor_head = MLP(dims, dims, 2, 2)
        self.keep_query_pos = self.layers[0].keep_query_pos
        if not self.keep_query_pos:
            drop_later_query_pos(self.layers)

    def forward(self, query: Tensor, key: Tensor, query_pos: Tensor, key_pos: Tensor,
                reg_branches: nn.Module, key_padding_mask: Tensor = None,
                **kwargs) -> Tuple[Tensor, Tensor]:
        """Decode (B, Q, C) content queries from (B, Q, query_dim) anchors in
        logit space (``query_pos``) against (B, S, C) keys.

        Returns:
            tuple[Tensor, Tensor]: (num_layers or 1, B, Q, C) states and the
            (num_layers, B, Q, query_dim) sigmoid anchors each layer started
            from.
        """
        half = self.embed_dims // 2
        reference_points = query_pos.sigmoid()
        layer_references = [reference_points]
        intermediate = []
        for layer_id, layer in enumerate(self.layers):
            ref_sine_embed = coordinate_to_encoding(reference_points, num_feats=half)
            layer_query_pos = self.ref_point_head(ref_sine_embed)
            if self.query_scale_type == 'fix_elewise':
                pos_transformation = self.query_scale.weight[layer_id]
            else:
                pos_transformation = 1 if layer_id == 0 else self.query_scale(query)
            # The x, y part of the embedding (ordered y, x), scaled.
            ref_sine_embed = ref_sine_embed[..., :self.embed_dims] * pos_transformation
            if self.with_modulated_hw_attn:
                ref_hw = self.ref_anchor_head(query).sigmoid()
                ref_sine_embed = torch.cat([
                    ref_sine_embed[..., :half] *
                    (ref_hw[..., 1] / reference_points[..., 3]).unsqueeze(-1),
                    ref_sine_embed[..., half:] *
                    (ref_hw[..., 0] / reference_points[..., 2]).unsqueeze(-1)
                ], dim=-1)
            query = layer(query, key, query_pos=layer_query_pos, ref_sine_embed=ref_sine_embed,
                          key_pos=key_pos, key_padding_mask=key_padding_mask,
                          is_first=layer_id == 0, **kwargs)
            reg_preds = reg_branches(query)
            new_reference_points = (reg_preds[..., :self.query_dim] +
                                    inverse_sigmoid(reference_points)).sigmoid()
            if layer_id != self.num_layers - 1:
                layer_references.append(new_reference_points)
            reference_points = new_reference_points.detach()
            if self.return_intermediate:
                intermediate.append(self.post_norm(query))
        references = torch.stack(layer_references)
        if self.return_intermediate:
            return torch.stack(intermediate), references
        return self.post_norm(query).unsqueeze(0), references


class DABDetrTransformerEncoder(DetrTransformerEncoder):
    """DETR's encoder whose layers see positions scaled by ``query_scale`` of
    their input."""

    def _init_layers(self) -> None:
        super()._init_layers()
        self.query_scale = MLP(self.embed_dims, self.embed_dims, self.embed_dims, 2)

    def forward(self, query: Tensor, query_pos: Tensor, key_padding_mask: Tensor,
                **kwargs) -> Tensor:
        for index in range(self.num_layers):
            query = self._run_layer(index, query=query,
                                    query_pos=query_pos * self.query_scale(query),
                                    key_padding_mask=key_padding_mask, **kwargs)
        return query
