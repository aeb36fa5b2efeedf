"""DINOHead: Deformable DETR's head plus the denoising queries' losses."""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import SampleList
from detlab.structures.bbox import bbox_xyxy_to_cxcywh
from .deformable_detr_head import DeformableDETRHead
from .detr_head import DETRHead, name_layer_losses


@MODELS.register_module()
class DINOHead(DeformableDETRHead):
    """Losses of the matching queries (Hungarian), of the encoder's top
    proposals (``enc_loss_*``, with their classes) and of the denoising
    queries (``dn_loss_*``, ``d{i}.dn_loss_*``, targets known by construction)."""

    def loss(self, hidden_states: Tensor, references: List[Tensor], enc_outputs_class: Tensor,
             enc_outputs_coord: Tensor, batch_data_samples: SampleList,
             dn_meta: Dict[str, int]) -> dict:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        return self.loss_by_feat(*self(hidden_states, references), enc_outputs_class,
                                 enc_outputs_coord, batch_gt_instances, batch_img_metas, dn_meta)

    def loss_by_feat(self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                     enc_cls_scores: Tensor, enc_bbox_preds: Tensor,
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     dn_meta: Optional[Dict[str, int]],
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        (matching_cls_scores, matching_bbox_preds, denoising_cls_scores,
         denoising_bbox_preds) = self.split_outputs(all_layers_cls_scores, all_layers_bbox_preds,
                                                    dn_meta)
        loss_dict = DETRHead.loss_by_feat(self, matching_cls_scores, matching_bbox_preds,
                                          batch_gt_instances, batch_img_metas,
                                          batch_gt_instances_ignore)
        if enc_cls_scores is not None:
            loss_dict.update(self._encoder_losses(enc_cls_scores, enc_bbox_preds,
                                                  batch_gt_instances, batch_img_metas))
        if denoising_cls_scores is not None:
            dn_losses_cls, dn_losses_bbox, dn_losses_iou = self.loss_dn(
                denoising_cls_scores, denoising_bbox_preds, batch_gt_instances=batch_gt_instances,
                batch_img_metas=batch_img_metas, dn_meta=dn_meta)
            loss_dict.update(name_layer_losses(
                dict(loss_cls=dn_losses_cls, loss_bbox=dn_losses_bbox, loss_iou=dn_losses_iou),
                prefix='dn_'))
        return loss_dict

    def loss_dn(self, all_layers_denoising_cls_scores: Tensor,
                all_layers_denoising_bbox_preds: Tensor, batch_gt_instances: List[InstanceData],
                batch_img_metas: List[dict], dn_meta: Dict[str, int]) -> Tuple[List[Tensor]]:
        """Per-layer lists of the denoising classification, L1 and IoU losses."""
        targets = self.get_dn_targets(batch_gt_instances, batch_img_metas, dn_meta)
        per_layer = [
            self._losses_from_targets(cls_scores, bbox_preds, targets, batch_img_metas)
            for cls_scores, bbox_preds in zip(all_layers_denoising_cls_scores,
                                              all_layers_denoising_bbox_preds)
        ]
        return tuple(list(losses) for losses in zip(*per_layer))

    def _loss_dn_single(self, dn_cls_scores: Tensor, dn_bbox_preds: Tensor,
                        batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                        dn_meta: Dict[str, int]) -> Tuple[Tensor]:
        targets = self.get_dn_targets(batch_gt_instances, batch_img_metas, dn_meta)
        return self._losses_from_targets(dn_cls_scores, dn_bbox_preds, targets, batch_img_metas)

    def get_dn_targets(self, batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                       dn_meta: Dict[str, int]) -> tuple:
        per_image = [self._get_dn_targets_single(gt, meta, dn_meta)
                     for gt, meta in zip(batch_gt_instances, batch_img_metas)]
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds = zip(*per_image)
        return (list(labels), list(label_weights), list(bbox_targets), list(bbox_weights),
                sum(inds.numel() for inds in pos_inds), sum(inds.numel() for inds in neg_inds))

    def _get_dn_targets_single(self, gt_instances: InstanceData, img_meta: dict,
                               dn_meta: Dict[str, int]) -> tuple:
        """Targets of one image's denoising queries: the positive copy of gt
        k in group g is query ``g * group_size + k`` and learns gt k; every
        other query learns background."""
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        num_groups = dn_meta['num_denoising_groups']
        num_denoising_queries = dn_meta['num_denoising_queries']
        num_queries_each_group = int(num_denoising_queries / num_groups)
        device = gt_bboxes.device
        if len(gt_labels) > 0:
            t = torch.arange(len(gt_labels), dtype=torch.long, device=device)
            t = t.unsqueeze(0).repeat(num_groups, 1)
            pos_assigned_gt_inds = t.flatten()
            pos_inds = (torch.arange(num_groups, dtype=torch.long, device=device).unsqueeze(1) *
                        num_queries_each_group + t).flatten()
        else:
            pos_inds = pos_assigned_gt_inds = gt_bboxes.new_tensor([], dtype=torch.long)
        neg_inds = pos_inds + num_queries_each_group // 2
        labels = gt_bboxes.new_full((num_denoising_queries, ), self.num_classes, dtype=torch.long)
        labels[pos_inds] = gt_labels[pos_assigned_gt_inds]
        label_weights = gt_bboxes.new_ones(num_denoising_queries)
        bbox_targets = torch.zeros(num_denoising_queries, 4, device=device)
        bbox_weights = torch.zeros(num_denoising_queries, 4, device=device)
        bbox_weights[pos_inds] = 1.0
        img_h, img_w = img_meta['img_shape'][:2]
        factor = gt_bboxes.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
        bbox_targets[pos_inds] = bbox_xyxy_to_cxcywh(gt_bboxes / factor).repeat([num_groups, 1])
        return labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds

    @staticmethod
    def split_outputs(all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                      dn_meta: Optional[Dict[str, int]]) -> Tuple[Optional[Tensor], ...]:
        """(matching cls, matching boxes, denoising cls, denoising boxes); the
        denoising ones are None without ``dn_meta``."""
        if dn_meta is None:
            return all_layers_cls_scores, all_layers_bbox_preds, None, None
        num_dn = dn_meta['num_denoising_queries']
        return (all_layers_cls_scores[:, :, num_dn:, :], all_layers_bbox_preds[:, :, num_dn:, :],
                all_layers_cls_scores[:, :, :num_dn, :], all_layers_bbox_preds[:, :, :num_dn, :])
