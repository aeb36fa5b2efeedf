"""Conditional DETR for Fast Training Convergence (Meng et al., 2021)."""
from typing import Dict

from torch import Tensor

from detlab.registry import MODELS
from ..layers import ConditionalDetrTransformerDecoder
from .detr import DETR


@MODELS.register_module()
class ConditionalDETR(DETR):
    """DETR whose decoder queries each predict a reference point that
    conditions their cross-attention; the head predicts boxes around it."""
    decoder_type = ConditionalDetrTransformerDecoder

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, memory_pos: Tensor) -> Dict:
        """``hidden_states`` (num_layers, B, Q, C) and ``references`` (B, Q, 2)."""
        hidden_states, references = self.decoder(
            query=query, key=memory, query_pos=query_pos, key_pos=memory_pos,
            key_padding_mask=memory_mask)
        return dict(hidden_states=hidden_states, references=references)
