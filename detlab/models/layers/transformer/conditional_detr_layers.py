"""Conditional DETR's decoder: cross-attention whose queries carry a sine
embedding of a reference point, concatenated (not added) to their content.

``ConditionalAttention`` is also DAB-DETR's attention. Keys follow MMDetection
(``qcontent_proj``, ``qpos_proj``, ``kcontent_proj``, ``kpos_proj``, ``v_proj``,
``qpos_sine_proj``, ``out_proj``).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from .detr_layers import DetrTransformerDecoder, DetrTransformerDecoderLayer
from .utils import MLP, coordinate_to_encoding


class ConditionalAttention(BaseModule):
    """Multi-head attention with separate content and position projections,
    a residual connection and dropout.

    As self-attention, queries and keys are ``content + position``. As
    cross-attention (``cross_attn=True``), each head's query is its content
    (plus position in the first decoder layer, or always with
    ``keep_query_pos``) concatenated with its slice of the projected
    reference-point embedding, and each head's key is its content
    concatenated with its key position, so a head's dot product sums a
    content term and a spatial term.

    Args:
        embed_dims (int): Channels of queries, keys and values.
        num_heads (int): Attention heads.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout on the output before the residual.
        cross_attn (bool): Cross-attention (adds ``qpos_sine_proj``).
        keep_query_pos (bool): Add the query position in every layer's
            cross-attention, not only the first.
        batch_first (bool): Must be True (inputs are (B, N, C)).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.,
                 proj_drop: float = 0., cross_attn: bool = False, keep_query_pos: bool = False,
                 batch_first: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if batch_first is not True:
            raise ValueError(f'ConditionalAttention: batch_first must be True (every DETR in '
                             f'detlab and MMDetection is batch first), got {batch_first!r}')
        if embed_dims % num_heads:
            raise ValueError(f'ConditionalAttention: embed_dims ({embed_dims}) must be '
                             f'divisible by num_heads ({num_heads})')
        self.cross_attn = cross_attn
        self.keep_query_pos = keep_query_pos
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj_drop = nn.Dropout(proj_drop)
        self._init_layers()

    def _init_layers(self) -> None:
        dims = self.embed_dims
        self.qcontent_proj = nn.Linear(dims, dims)
        self.qpos_proj = nn.Linear(dims, dims)
        self.kcontent_proj = nn.Linear(dims, dims)
        self.kpos_proj = nn.Linear(dims, dims)
        self.v_proj = nn.Linear(dims, dims)
        if self.cross_attn:
            self.qpos_sine_proj = nn.Linear(dims, dims)
        self.out_proj = nn.Linear(dims, dims)
        nn.init.constant_(self.out_proj.bias, 0.)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, N, D) -> (B, num_heads, N, D / num_heads)."""
        return x.reshape(x.size(0), x.size(1), self.num_heads, -1).transpose(1, 2)

    def forward_attn(self, query: Tensor, key: Tensor, value: Tensor,
                     attn_mask: Optional[Tensor] = None,
                     key_padding_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Scaled dot-product attention of (B, Q, D) queries on (B, S, D) keys
        and (B, S, embed_dims) values.

        Args:
            attn_mask (Tensor, optional): (Q, S) or (B * num_heads, Q, S);
                bool (True = masked) or float (added to the logits).
            key_padding_mask (Tensor, optional): (B, S), True at padding.

        Returns:
            tuple[Tensor, Tensor]: (B, Q, embed_dims) projected outputs and the
            (B, Q, S) attention weights averaged over heads.
        """
        batch_size, num_queries, dims = query.shape
        num_keys = key.size(1)
        if key.shape[:2] != value.shape[:2] or key.size(2) != dims:
            raise ValueError(f'ConditionalAttention: key {tuple(key.shape)} and value '
                             f'{tuple(value.shape)} must share batch and length, key and query '
                             f'{tuple(query.shape)} their channels')
        scaling = float(dims // self.num_heads)**-0.5
        q, k, v = self._heads(query * scaling), self._heads(key), self._heads(value)
        weights = q @ k.transpose(-2, -1)  # (B, heads, Q, S)
        if attn_mask is not None:
            if attn_mask.dtype == torch.uint8:
                attn_mask = attn_mask.bool()
            attn_mask = attn_mask.reshape(-1, self.num_heads, num_queries, num_keys) \
                if attn_mask.dim() == 3 else attn_mask
            weights = weights.masked_fill(attn_mask, float('-inf')) \
                if attn_mask.dtype == torch.bool else weights + attn_mask
        if key_padding_mask is not None:
            weights = weights.masked_fill(key_padding_mask.bool()[:, None, None, :],
                                          float('-inf'))
        weights = self.attn_drop(F.softmax(weights, dim=-1))
        output = (weights @ v).transpose(1, 2).flatten(2)
        return self.out_proj(output), weights.mean(dim=1)

    def forward(self, query: Tensor, key: Tensor, query_pos: Tensor = None,
                ref_sine_embed: Tensor = None, key_pos: Tensor = None,
                attn_mask: Tensor = None, key_padding_mask: Tensor = None,
                is_first: bool = False) -> Tensor:
        """(B, Q, C) queries plus their attention output.

        Self-attention ignores ``key`` and attends among the queries;
        cross-attention attends to ``key`` (B, S, C), which also gives the
        values, with ``key_pos`` (B, S, C) and ``ref_sine_embed`` (B, Q, C).
        """
        if not self.cross_attn:
            q = self.qcontent_proj(query) + self.qpos_proj(query_pos)
            k = self.kcontent_proj(query) + self.kpos_proj(query_pos)
            output = self.forward_attn(q, k, self.v_proj(query), attn_mask=attn_mask,
                                       key_padding_mask=key_padding_mask)[0]
            return query + self.proj_drop(output)
        q = self.qcontent_proj(query)
        k = self.kcontent_proj(key)
        v = self.v_proj(key)
        k_pos = self.kpos_proj(key_pos)
        if is_first or self.keep_query_pos:
            q = q + self.qpos_proj(query_pos)
            k = k + k_pos
        q_sine = self.qpos_sine_proj(ref_sine_embed)
        q = torch.cat([self._split(q), self._split(q_sine)], dim=3).flatten(2)
        k = torch.cat([self._split(k), self._split(k_pos)], dim=3).flatten(2)
        output = self.forward_attn(q, k, v, attn_mask=attn_mask,
                                   key_padding_mask=key_padding_mask)[0]
        return query + self.proj_drop(output)

    def _split(self, x: Tensor) -> Tensor:
        """(B, N, C) -> (B, N, num_heads, C / num_heads)."""
        return x.view(x.size(0), x.size(1), self.num_heads, -1)


class ConditionalDetrTransformerDecoderLayer(DetrTransformerDecoderLayer):
    """DETR's decoder layer with ``ConditionalAttention`` for both attentions
    (same keys: ``self_attn``, ``cross_attn``, ``ffn``, ``norms.0/1/2``)."""
    attention_type = ConditionalAttention

    def forward(self, query: Tensor, key: Tensor = None, query_pos: Tensor = None,
                key_pos: Tensor = None, self_attn_masks: Tensor = None,
                cross_attn_masks: Tensor = None, key_padding_mask: Tensor = None,
                ref_sine_embed: Tensor = None, is_first: bool = False) -> Tensor:
        """(B, Q, C) queries attending to (B, S, C) keys (also the values)."""
        query = self.norms[0](self.self_attn(query=query, key=query, query_pos=query_pos,
                                             key_pos=query_pos, attn_mask=self_attn_masks))
        query = self.norms[1](self.cross_attn(query=query, key=key, query_pos=query_pos,
                                              key_pos=key_pos, attn_mask=cross_attn_masks,
                                              key_padding_mask=key_padding_mask,
                                              ref_sine_embed=ref_sine_embed,
                                              is_first=is_first))
        return self.norms[2](self.ffn(query))


def drop_later_query_pos(layers) -> None:
    """Remove ``cross_attn.qpos_proj`` from every decoder layer but the first:
    only the first adds the query position to its cross-attention queries."""
    for layer in layers[1:]:
        layer.cross_attn.qpos_proj = None


class ConditionalDetrTransformerDecoder(DetrTransformerDecoder):
    """Decoder whose queries predict a reference point each (``ref_point_head``
    on the query positions); every layer cross-attends with the point's sine
    embedding, scaled from the second layer on by ``query_scale`` of the
    layer's input.

    ``forward`` returns the (num_layers or 1, B, Q, C) states and the
    (B, Q, 2) sigmoid reference points ``x, y``.
    """
    layer_type = ConditionalDetrTransformerDecoderLayer

    def _init_layers(self) -> None:
        super()._init_layers()
        self.query_scale = MLP(self.embed_dims, self.embed_dims, self.embed_dims, 2)
        self.ref_point_head = MLP(self.embed_dims, self.embed_dims, 2, 2)
        drop_later_query_pos(self.layers)

    def forward(self, query: Tensor, key: Tensor = None, query_pos: Tensor = None,
                key_pos: Tensor = None,
                key_padding_mask: Tensor = None) -> Tuple[Tensor, Tensor]:
        reference = self.ref_point_head(query_pos).sigmoid()
        reference_sine = coordinate_to_encoding(reference[..., :2],
                                                num_feats=self.embed_dims // 2)
        intermediate = []
        for layer_id, layer in enumerate(self.layers):
            ref_sine_embed = reference_sine if layer_id == 0 else \
                reference_sine * self.query_scale(query)
            query = layer(query, key=key, query_pos=query_pos, key_pos=key_pos,
                          key_padding_mask=key_padding_mask, ref_sine_embed=ref_sine_embed,
                          is_first=layer_id == 0)
            if self.return_intermediate:
                intermediate.append(self.post_norm(query))
        if self.return_intermediate:
            return torch.stack(intermediate), reference
        return self.post_norm(query).unsqueeze(0), reference
