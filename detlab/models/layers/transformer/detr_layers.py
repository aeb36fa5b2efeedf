"""DETR's transformer encoder and decoder (post-norm), batch first throughout."""
from typing import Optional

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule, ModuleList
from torch import Tensor

from .utils import FFN, MultiheadAttention

_DEFAULT_ATTN = dict(embed_dims=256, num_heads=8, dropout=0.0)
_DEFAULT_FFN = dict(embed_dims=256, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                    act_cfg=dict(type='ReLU', inplace=True))


def batch_first(cfg: dict, owner: str, key: str) -> dict:
    """A copy of an attention config with ``batch_first=True`` (the only layout used)."""
    if cfg.get('batch_first', True) is not True:
        raise ValueError(f'{owner}: {key}.batch_first must be True (every DETR in detlab and '
                         f'MMDetection is batch first), got {cfg["batch_first"]!r}')
    return dict(cfg, batch_first=True)


class DetrTransformerEncoderLayer(BaseModule):
    """Self-attention then FFN, each followed by LayerNorm (keys ``self_attn``,
    ``ffn``, ``norms.0/1``)."""

    def __init__(self, self_attn_cfg: Optional[dict] = _DEFAULT_ATTN,
                 ffn_cfg: Optional[dict] = _DEFAULT_FFN,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.self_attn_cfg = batch_first(self_attn_cfg, type(self).__name__, 'self_attn_cfg')
        self.ffn_cfg = ffn_cfg
        self.norm_cfg = norm_cfg
        self._init_layers()

    def _init_layers(self) -> None:
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(build_norm_layer(self.norm_cfg, self.embed_dims)[1]
                                for _ in range(2))

    def forward(self, query: Tensor, query_pos: Tensor, key_padding_mask: Tensor,
                **kwargs) -> Tensor:
        """(B, N, C) features with their (B, N, C) positions and (B, N) padding."""
        query = self.self_attn(query=query, key=query, value=query, query_pos=query_pos,
                               key_pos=query_pos, key_padding_mask=key_padding_mask, **kwargs)
        query = self.norms[0](query)
        return self.norms[1](self.ffn(query))


class DetrTransformerDecoderLayer(BaseModule):
    """Self-attention, cross-attention to the memory, FFN; each followed by
    LayerNorm (keys ``self_attn``, ``cross_attn``, ``ffn``, ``norms.0/1/2``).
    Subclasses swap the attention module through ``attention_type``."""
    attention_type = MultiheadAttention

    def __init__(self, self_attn_cfg: Optional[dict] = _DEFAULT_ATTN,
                 cross_attn_cfg: Optional[dict] = _DEFAULT_ATTN,
                 ffn_cfg: Optional[dict] = _DEFAULT_FFN,
                 norm_cfg: Optional[dict] = dict(type='LN'),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.self_attn_cfg = batch_first(self_attn_cfg, type(self).__name__, 'self_attn_cfg')
        self.cross_attn_cfg = batch_first(cross_attn_cfg, type(self).__name__, 'cross_attn_cfg')
        self.ffn_cfg = ffn_cfg
        self.norm_cfg = norm_cfg
        self._init_layers()

    def _init_layers(self) -> None:
        self.self_attn = self.attention_type(**self.self_attn_cfg)
        self.cross_attn = self.attention_type(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(build_norm_layer(self.norm_cfg, self.embed_dims)[1]
                                for _ in range(3))

    def forward(self, query: Tensor, key: Tensor = None, value: Tensor = None,
                query_pos: Tensor = None, key_pos: Tensor = None, self_attn_mask: Tensor = None,
                cross_attn_mask: Tensor = None, key_padding_mask: Tensor = None,
                **kwargs) -> Tensor:
        """(B, Q, C) queries attending to (B, N, C) keys/values."""
        query = self.self_attn(query=query, key=query, value=query, query_pos=query_pos,
                               key_pos=query_pos, attn_mask=self_attn_mask, **kwargs)
        query = self.norms[0](query)
        query = self.cross_attn(query=query, key=key, value=value, query_pos=query_pos,
                                key_pos=key_pos, attn_mask=cross_attn_mask,
                                key_padding_mask=key_padding_mask, **kwargs)
        query = self.norms[1](query)
        return self.norms[2](self.ffn(query))


class DetrTransformerEncoder(BaseModule):
    """``num_layers`` encoder layers built from ``layer_cfg``.

    Args:
        num_layers (int): Layers.
        layer_cfg (dict): Arguments of each layer.
        num_cp (int): Layers to run under activation checkpointing (the first
            ``num_cp``); -1 for none.
        init_cfg (dict, optional): mmengine initialisation config.
    """
    layer_type = DetrTransformerEncoderLayer

    def __init__(self, num_layers: int, layer_cfg: dict, num_cp: int = -1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_cp > num_layers:
            raise ValueError(f'{type(self).__name__}: num_cp ({num_cp}) exceeds num_layers '
                             f'({num_layers})')
        self.num_layers = num_layers
        self.layer_cfg = layer_cfg
        self.num_cp = num_cp
        self._init_layers()

    def _init_layers(self) -> None:
        self.layers = ModuleList(self.layer_type(**self.layer_cfg) for _ in range(self.num_layers))
        self.embed_dims = self.layers[0].embed_dims

    def _run_layer(self, index: int, **kwargs) -> Tensor:
        layer = self.layers[index]
        if index < self.num_cp and self.training:
            from torch.utils.checkpoint import checkpoint
            return checkpoint(lambda: layer(**kwargs), use_reentrant=False)
        return layer(**kwargs)

    def forward(self, query: Tensor, query_pos: Tensor, key_padding_mask: Tensor,
                **kwargs) -> Tensor:
        for index in range(self.num_layers):
            query = self._run_layer(index, query=query, query_pos=query_pos,
                                    key_padding_mask=key_padding_mask, **kwargs)
        return query


class DetrTransformerDecoder(BaseModule):
    """``num_layers`` decoder layers and a final norm.

    Args:
        num_layers (int): Layers.
        layer_cfg (dict): Arguments of each layer.
        post_norm_cfg (dict, optional): Norm applied to every returned state.
        return_intermediate (bool): Return every layer's (normed) output,
            stacked, rather than only the last one's.
        init_cfg (dict, optional): mmengine initialisation config.
    """
    layer_type = DetrTransformerDecoderLayer

    def __init__(self, num_layers: int, layer_cfg: dict,
                 post_norm_cfg: Optional[dict] = dict(type='LN'),
                 return_intermediate: bool = True, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.layer_cfg = layer_cfg
        self.num_layers = num_layers
        self.post_norm_cfg = post_norm_cfg
        self.return_intermediate = return_intermediate
        self._init_layers()

    def _init_layers(self) -> None:
        self.layers = ModuleList(self.layer_type(**self.layer_cfg) for _ in range(self.num_layers))
        self.embed_dims = self.layers[0].embed_dims
        self.post_norm = build_norm_layer(self.post_norm_cfg, self.embed_dims)[1]

    def forward(self, query: Tensor, key: Tensor, value: Tensor, query_pos: Tensor,
                key_pos: Tensor, key_padding_mask: Tensor, **kwargs) -> Tensor:
        """Returns (num_layers or 1, B, Q, C) hidden states."""
        intermediate = []
        for layer in self.layers:
            query = layer(query, key=key, value=value, query_pos=query_pos, key_pos=key_pos,
                          key_padding_mask=key_padding_mask, **kwargs)
            if self.return_intermediate:
                intermediate.append(self.post_norm(query))
        if self.return_intermediate:
            return torch.stack(intermediate)
        return self.post_norm(query).unsqueeze(0)
