"""DETR: End-to-End Object Detection with Transformers (Carion et al., 2020)."""
from typing import Dict, Tuple

import torch
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures import OptSampleList
from ..layers import DetrTransformerDecoder, DetrTransformerEncoder, SinePositionalEncoding
from .base_detr import DetectionTransformer, padding_masks, resize_mask


@MODELS.register_module()
class DETR(DetectionTransformer):
    """DETR on the last feature level: a transformer encoder over its pixels
    and ``num_queries`` learned queries decoded against them.

    Subclasses that keep this layout swap ``encoder_type``/``decoder_type``
    and set ``query_dim``, the width of a learned query.
    """
    encoder_type = DetrTransformerEncoder
    decoder_type = DetrTransformerDecoder

    @property
    def query_dim(self) -> int:
        return self.embed_dims

    def _init_layers(self) -> None:
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = self.encoder_type(**self.encoder)
        self.decoder = self.decoder_type(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.query_dim)
        num_feats = self.positional_encoding.num_feats
        if num_feats * 2 != self.embed_dims:
            raise ValueError(f'{type(self).__name__}: embed_dims ({self.embed_dims}) must be '
                             f'twice positional_encoding.num_feats ({num_feats})')

    def init_weights(self) -> None:
        super().init_weights()
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)

    def pre_transformer(self, img_feats: Tuple[Tensor],
                        batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        feat = img_feats[-1]
        batch_size, feat_dim = feat.shape[:2]
        masks = padding_masks(batch_data_samples, feat)
        if masks is None:
            pos_embed = self.positional_encoding(None, input=feat)
        else:
            masks = resize_mask(masks, feat)
            pos_embed = self.positional_encoding(masks)
            masks = masks.view(batch_size, -1)
        feat = feat.view(batch_size, feat_dim, -1).permute(0, 2, 1)
        pos_embed = pos_embed.view(batch_size, feat_dim, -1).permute(0, 2, 1)
        return (dict(feat=feat, feat_mask=masks, feat_pos=pos_embed),
                dict(memory_mask=masks, memory_pos=pos_embed))

    def forward_encoder(self, feat: Tensor, feat_mask: Tensor, feat_pos: Tensor) -> Dict:
        return dict(memory=self.encoder(query=feat, query_pos=feat_pos,
                                        key_padding_mask=feat_mask))

    def pre_decoder(self, memory: Tensor) -> Tuple[Dict, Dict]:
        query_pos = self.query_embedding.weight.unsqueeze(0).repeat(memory.size(0), 1, 1)
        return dict(query_pos=query_pos, query=torch.zeros_like(query_pos), memory=memory), {}

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, memory_pos: Tensor) -> Dict:
        return dict(hidden_states=self.decoder(query=query, key=memory, value=memory,
                                               query_pos=query_pos, key_pos=memory_pos,
                                               key_padding_mask=memory_mask))
