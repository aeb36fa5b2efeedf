"""DeformableDETRHead: per-decoder-layer branches that refine reference boxes."""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmengine.model import bias_init_with_prob, constant_init
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import SampleList
from ..layers.transformer import inverse_sigmoid
from .detr_head import DETRHead


@MODELS.register_module()
class DeformableDETRHead(DETRHead):
    """Classification and box branches for every decoder layer (and, with
    ``as_two_stage``, one more for the encoder's proposals).

    Box branches predict offsets to the layer's reference in logit space. The
    detector sets ``share_pred_layer`` (no box refinement: one branch shared
    by all layers), ``num_pred_layer`` and ``as_two_stage``.

    Args:
        share_pred_layer (bool): One branch object for every layer.
        num_pred_layer (int): Branches (decoder layers, + 1 for two-stage).
        as_two_stage (bool): The encoder proposes boxes (extra last branch).
    """

    def __init__(self, *args, share_pred_layer: bool = False, num_pred_layer: int = 6,
                 as_two_stage: bool = False, **kwargs) -> None:
        self.share_pred_layer = share_pred_layer
        self.num_pred_layer = num_pred_layer
        self.as_two_stage = as_two_stage
        super().__init__(*args, **kwargs)

    def _init_layers(self) -> None:
        fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        reg_branch = []
        for _ in range(self.num_reg_fcs):
            reg_branch += [nn.Linear(self.embed_dims, self.embed_dims), nn.ReLU()]
        reg_branch = nn.Sequential(*reg_branch, nn.Linear(self.embed_dims, 4))
        if self.share_pred_layer:
            self.cls_branches = nn.ModuleList([fc_cls] * self.num_pred_layer)
            self.reg_branches = nn.ModuleList([reg_branch] * self.num_pred_layer)
        else:
            self.cls_branches = nn.ModuleList(
                copy.deepcopy(fc_cls) for _ in range(self.num_pred_layer))
            self.reg_branches = nn.ModuleList(
                copy.deepcopy(reg_branch) for _ in range(self.num_pred_layer))

    def init_weights(self) -> None:
        """Prior 0.01 for sigmoid classes; box branches start at their reference
        (the first with small boxes unless two-stage)."""
        if self.loss_cls.use_sigmoid:
            bias_init = bias_init_with_prob(0.01)
            for m in self.cls_branches:
                if getattr(m, 'bias', None) is not None:
                    nn.init.constant_(m.bias, bias_init)
        for m in self.reg_branches:
            constant_init(m[-1], 0, bias=0)
        nn.init.constant_(self.reg_branches[0][-1].bias.data[2:], -2.0)
        if self.as_two_stage:
            for m in self.reg_branches:
                nn.init.constant_(m[-1].bias.data[2:], 0.0)

    def forward(self, hidden_states: Tensor, references: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """(num_layers, B, Q, C) states and num_layers + 1 references (B, Q, 2
        or 4) -> (num_layers, B, Q, classes) logits and (num_layers, B, Q, 4)
        sigmoid ``cx, cy, w, h``. Layer i predicts relative to references[i]."""
        all_cls, all_coords = [], []
        for layer_id in range(hidden_states.shape[0]):
            reference = inverse_sigmoid(references[layer_id])
            hidden_state = hidden_states[layer_id]
            tmp_reg_preds = self.reg_branches[layer_id](hidden_state)
            if reference.shape[-1] == 4:
                tmp_reg_preds = tmp_reg_preds + reference
            else:
                tmp_reg_preds = torch.cat((tmp_reg_preds[..., :2] + reference,
                                           tmp_reg_preds[..., 2:]), -1)
            all_cls.append(self.cls_branches[layer_id](hidden_state))
            all_coords.append(tmp_reg_preds.sigmoid())
        return torch.stack(all_cls), torch.stack(all_coords)

    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Optional[Tensor], enc_outputs_coord: Optional[Tensor],
             batch_data_samples: SampleList) -> dict:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        return self.loss_by_feat(*self(hidden_states, references), enc_outputs_class,
                                 enc_outputs_coord, batch_gt_instances, batch_img_metas)

    def loss_by_feat(self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                     enc_cls_scores: Optional[Tensor], enc_bbox_preds: Optional[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """Decoder-layer losses plus, two-stage, ``enc_loss_*`` of the
        class-agnostic encoder proposals."""
        loss_dict = super().loss_by_feat(all_layers_cls_scores, all_layers_bbox_preds,
                                         batch_gt_instances, batch_img_metas,
                                         batch_gt_instances_ignore)
        if enc_cls_scores is not None:
            proposal_gt_instances = copy.deepcopy(batch_gt_instances)
            for gt_instances in proposal_gt_instances:
                gt_instances.labels = torch.zeros_like(gt_instances.labels)
            loss_dict.update(self._encoder_losses(enc_cls_scores, enc_bbox_preds,
                                                  proposal_gt_instances, batch_img_metas))
        return loss_dict

    def _encoder_losses(self, enc_cls_scores: Tensor, enc_bbox_preds: Tensor,
                        batch_gt_instances: List[InstanceData],
                        batch_img_metas: List[dict]) -> Dict[str, Tensor]:
        losses = self.loss_by_feat_single(enc_cls_scores, enc_bbox_preds, batch_gt_instances,
                                          batch_img_metas)
        return dict(zip(('enc_loss_cls', 'enc_loss_bbox', 'enc_loss_iou'), losses))

    def predict(self, hidden_states: Tensor, references: List[Tensor],
                batch_data_samples: SampleList, rescale: bool = True) -> List[InstanceData]:
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        return self.predict_by_feat(*self(hidden_states, references),
                                    batch_img_metas=batch_img_metas, rescale=rescale)
