"""ConditionalDETRHead: DETR's head predicting boxes around each query's reference point."""
from typing import List, Tuple

import torch
import torch.nn as nn
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import SampleList
from ..layers.transformer import inverse_sigmoid
from .detr_head import DETRHead


@MODELS.register_module()
class ConditionalDETRHead(DETRHead):
    """DETR's layers (``fc_cls``, ``reg_ffn``, ``fc_reg``); the box centre is
    predicted as an offset to the decoder's reference point in logit space.
    With sigmoid classification the class bias starts at prior 0.01."""

    def init_weights(self) -> None:
        super().init_weights()
        if self.loss_cls.use_sigmoid:
            nn.init.constant_(self.fc_cls.bias, bias_init_with_prob(0.01))

    def forward(self, hidden_states: Tensor, references: Tensor) -> Tuple[Tensor, Tensor]:
        """(num_layers, B, Q, C) states and (B, Q, 2) sigmoid reference points
        -> (num_layers, B, Q, cls_out_channels) logits and (num_layers, B, Q, 4)
        sigmoid ``cx, cy, w, h``."""
        reg_preds = self.fc_reg(self.activate(self.reg_ffn(hidden_states)))
        centres = reg_preds[..., :2] + inverse_sigmoid(references)
        layers_bbox_preds = torch.cat([centres, reg_preds[..., 2:]], dim=-1).sigmoid()
        return self.fc_cls(hidden_states), layers_bbox_preds

    def loss(self, hidden_states: Tensor, references: Tensor,
             batch_data_samples: SampleList) -> dict:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        return self.loss_by_feat(*self(hidden_states, references), batch_gt_instances,
                                 batch_img_metas)

    def loss_and_predict(self, hidden_states: Tensor, references: Tensor,
                         batch_data_samples: SampleList) -> Tuple[dict, List[InstanceData]]:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        outs = self(hidden_states, references)
        losses = self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas)
        return losses, self.predict_by_feat(*outs, batch_img_metas=batch_img_metas)

    def predict(self, hidden_states: Tensor, references: Tensor,
                batch_data_samples: SampleList, rescale: bool = True) -> List[InstanceData]:
        """Detections of the last decoder layer."""
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        outs = self(hidden_states[-1:], self.last_references(references))
        return self.predict_by_feat(*outs, batch_img_metas=batch_img_metas, rescale=rescale)

    @staticmethod
    def last_references(references: Tensor) -> Tensor:
        """The references the last decoder layer predicts from: Conditional
        DETR's (B, Q, 2) points are shared by every layer."""
        return references
