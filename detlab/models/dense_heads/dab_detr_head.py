"""DABDETRHead: a class and a box offset for each anchor-box query."""
from typing import Tuple

import torch.nn as nn
from mmengine.model import bias_init_with_prob, constant_init
from torch import Tensor

from detlab.registry import MODELS
from ..layers.transformer import MLP, inverse_sigmoid
from .conditional_detr_head import ConditionalDETRHead


@MODELS.register_module()
class DABDETRHead(ConditionalDETRHead):
    """``fc_cls`` and a 3-layer box MLP ``fc_reg`` predicting offsets to each
    layer's anchor in logit space. The decoder uses ``fc_reg`` too, to refine
    the anchors between layers. The last box layer starts at zero."""

    def _init_layers(self) -> None:
        self.fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        self.fc_reg = MLP(self.embed_dims, self.embed_dims, 4, 3)

    def init_weights(self) -> None:
        if self.loss_cls.use_sigmoid:
            nn.init.constant_(self.fc_cls.bias, bias_init_with_prob(0.01))
        constant_init(self.fc_reg.layers[-1], 0., bias=0.)

    def forward(self, hidden_states: Tensor, references: Tensor) -> Tuple[Tensor, Tensor]:
        """(num_layers, B, Q, C) states and (num_layers, B, Q, 2 or 4) sigmoid
        anchors -> (num_layers, B, Q, cls_out_channels) logits and
        (num_layers, B, Q, 4) sigmoid ``cx, cy, w, h``."""
        reg_preds = self.fc_reg(hidden_states)
        anchors = inverse_sigmoid(references, eps=1e-3)
        num_coords = anchors.size(-1)
        reg_preds = reg_preds + nn.functional.pad(anchors, (0, 4 - num_coords))
        return self.fc_cls(hidden_states), reg_preds.sigmoid()

    @staticmethod
    def last_references(references: Tensor) -> Tensor:
        """(num_layers, B, Q, query_dim) anchors -> the last layer's (1, B, Q, query_dim)."""
        return references[-1:]
