"""DAB-DETR: Dynamic Anchor Boxes are Better Queries for DETR (Liu et al., 2022)."""
from typing import Dict, Tuple

from mmengine.model import uniform_init
from torch import Tensor, nn

from detlab.registry import MODELS
from ..layers import DABDetrTransformerDecoder, DABDetrTransformerEncoder, inverse_sigmoid
from .detr import DETR


@MODELS.register_module()
class DABDETR(DETR):
    """DETR whose learned queries are anchor boxes (``query_embedding`` holds
    ``num_queries`` anchors in logit space), refined by every decoder layer
    with the head's box branch.

    Args:
        with_random_refpoints (bool): Initialise the anchors uniformly in
            [0, 1] (their centres stored as logits) rather than as the other
            weights are. Defaults to False.
        num_patterns (int): Content patterns (Anchor-DETR): each anchor is
            decoded once per pattern, giving ``num_patterns * num_queries``
            queries. 0 means one zero content per anchor. Defaults to 0.
        *args, **kwargs: ``DETR``'s arguments.
    """
    encoder_type = DABDetrTransformerEncoder
    decoder_type = DABDetrTransformerDecoder

    def __init__(self, *args, with_random_refpoints: bool = False, num_patterns: int = 0,
                 **kwargs) -> None:
        if not isinstance(num_patterns, int) or num_patterns < 0:
            raise ValueError(f'DABDETR: num_patterns must be an int >= 0, got {num_patterns!r}')
        self.with_random_refpoints = with_random_refpoints
        self.num_patterns = num_patterns
        super().__init__(*args, **kwargs)

    @property
    def query_dim(self) -> int:
        return self.decoder.query_dim

    def _init_layers(self) -> None:
        super()._init_layers()
        if self.num_patterns > 0:
            self.patterns = nn.Embedding(self.num_patterns, self.embed_dims)

    def init_weights(self) -> None:
        super().init_weights()
        if self.with_random_refpoints:
            # The centres keep training afterwards, as they do in MMDetection.
            uniform_init(self.query_embedding)
            weight = self.query_embedding.weight.data
            weight[:, :2] = inverse_sigmoid(weight[:, :2])

    def pre_decoder(self, memory: Tensor) -> Tuple[Dict, Dict]:
        """Anchors as ``query_pos`` (B, Q, query_dim) and zero or pattern
        contents as ``query`` (B, Q, C); with patterns, Q is
        ``num_patterns * num_queries``, pattern-major."""
        batch_size = memory.size(0)
        query_pos = self.query_embedding.weight.unsqueeze(0).repeat(batch_size, 1, 1)
        if self.num_patterns == 0:
            query = query_pos.new_zeros(batch_size, self.num_queries, self.embed_dims)
        else:
            query = self.patterns.weight.repeat_interleave(self.num_queries, dim=0)
            query = query.unsqueeze(0).repeat(batch_size, 1, 1)
            query_pos = query_pos.repeat(1, self.num_patterns, 1)
        return dict(query_pos=query_pos, query=query, memory=memory), {}

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, memory_pos: Tensor) -> Dict:
        """``hidden_states`` (num_layers, B, Q, C) and ``references``
        (num_layers, B, Q, query_dim): the anchors each layer started from."""
        hidden_states, references = self.decoder(
            query=query, key=memory, query_pos=query_pos, key_pos=memory_pos,
            key_padding_mask=memory_mask, reg_branches=self.bbox_head.fc_reg)
        return dict(hidden_states=hidden_states, references=references)
