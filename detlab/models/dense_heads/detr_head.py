"""DETRHead: classes and boxes of every decoder layer's queries, Hungarian-matched losses.

Boxes travel normalised ``cx, cy, w, h`` in [0, 1] of the image's ``img_shape``
inside the head; predictions are returned as ``x1, y1, x2, y2`` pixels of the
original image. Losses of the last decoder layer are ``loss_cls``,
``loss_bbox``, ``loss_iou``; those of layer ``i`` before it are
``d{i}.loss_cls`` and so on, as MMDetection names them.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS, TASK_UTILS
from detlab.structures import SampleList
from detlab.structures.bbox import bbox_cxcywh_to_xyxy, bbox_xyxy_to_cxcywh
from detlab.utils import reduce_mean
from ..layers.transformer import FFN

_DEFAULT_TRAIN_CFG = dict(assigner=dict(
    type='HungarianAssigner',
    match_costs=[dict(type='ClassificationCost', weight=1.),
                 dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                 dict(type='IoUCost', iou_mode='giou', weight=2.0)]))


def image_factors(batch_img_metas: List[dict], num_queries: int, like: Tensor) -> Tensor:
    """(B * num_queries, 4) ``w, h, w, h`` of each query's image."""
    return torch.cat([
        like.new_tensor([w, h, w, h]).expand(num_queries, 4)
        for h, w in (meta['img_shape'][:2] for meta in batch_img_metas)
    ])


def name_layer_losses(per_layer: Dict[str, List[Tensor]], prefix: str = '') -> Dict[str, Tensor]:
    """``{'loss_cls': [l0, ..., last]}`` -> ``loss_cls`` (last layer) and
    ``d0.loss_cls`` ... for the layers before it; ``prefix`` goes before
    ``loss`` (``dn_`` gives ``dn_loss_cls``, ``d0.dn_loss_cls``)."""
    losses = {f'{prefix}{name}': values[-1] for name, values in per_layer.items()}
    num_layers = len(next(iter(per_layer.values())))
    for i in range(num_layers - 1):
        for name, values in per_layer.items():
            losses[f'd{i}.{prefix}{name}'] = values[i]
    return losses


@MODELS.register_module()
class DETRHead(BaseModule):
    """DETR's head: a linear classifier and a 3-layer box MLP on each query.

    Args:
        num_classes (int): Object classes (without background).
        embed_dims (int): Query channels. Defaults to 256.
        num_reg_fcs (int): Hidden layers of the box MLP. Defaults to 2.
        sync_cls_avg_factor (bool): Average the classification normaliser
            over processes. Defaults to False.
        loss_cls, loss_bbox, loss_iou (dict): Loss configs. With a softmax
            ``CrossEntropyLoss``, ``class_weight`` (a float) and
            ``bg_cls_weight`` weight the object classes and the background.
        train_cfg (dict): Holds the ``assigner`` (no sampler).
        test_cfg (dict): ``max_per_img`` detections. Defaults to 100.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 embed_dims: int = 256,
                 num_reg_fcs: int = 2,
                 sync_cls_avg_factor: bool = False,
                 loss_cls: dict = dict(type='CrossEntropyLoss', bg_cls_weight=0.1,
                                       use_sigmoid=False, loss_weight=1.0, class_weight=1.0),
                 loss_bbox: dict = dict(type='L1Loss', loss_weight=5.0),
                 loss_iou: dict = dict(type='GIoULoss', loss_weight=2.0),
                 train_cfg: dict = _DEFAULT_TRAIN_CFG,
                 test_cfg: dict = dict(max_per_img=100),
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.bg_cls_weight = 0
        self.sync_cls_avg_factor = sync_cls_avg_factor
        loss_cls = dict(loss_cls)
        class_weight = loss_cls.get('class_weight', None)
        if class_weight is not None and type(self) is DETRHead:
            bg_cls_weight = loss_cls.pop('bg_cls_weight', class_weight)
            for key, value in (('class_weight', class_weight), ('bg_cls_weight', bg_cls_weight)):
                if not isinstance(value, float):
                    raise TypeError(f'DETRHead: loss_cls.{key} must be a float, got {value!r}')
            loss_cls['class_weight'] = [class_weight] * num_classes + [bg_cls_weight]
            self.bg_cls_weight = bg_cls_weight
        if train_cfg:
            if 'assigner' not in train_cfg:
                raise KeyError(f'{type(self).__name__}: train_cfg needs an assigner, got keys '
                               f'{sorted(train_cfg)}')
            if train_cfg.get('sampler') is not None:
                raise ValueError(f'{type(self).__name__} takes no sampler; remove '
                                 f'train_cfg.sampler')
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
        self.num_classes = num_classes
        self.embed_dims = embed_dims
        self.num_reg_fcs = num_reg_fcs
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_iou = MODELS.build(loss_iou)
        self.cls_out_channels = num_classes if self.loss_cls.use_sigmoid else num_classes + 1
        self._init_layers()

    def _init_layers(self) -> None:
        self.fc_cls = nn.Linear(self.embed_dims, self.cls_out_channels)
        self.activate = nn.ReLU()
        self.reg_ffn = FFN(self.embed_dims, self.embed_dims, self.num_reg_fcs,
                           dict(type='ReLU', inplace=True), ffn_drop=0.0, add_identity=False)
        self.fc_reg = nn.Linear(self.embed_dims, 4)

    def forward(self, hidden_states: Tensor) -> Tuple[Tensor, Tensor]:
        """(num_layers, B, Q, C) states -> (num_layers, B, Q, cls_out_channels)
        logits and (num_layers, B, Q, 4) sigmoid ``cx, cy, w, h``."""
        layers_cls_scores = self.fc_cls(hidden_states)
        layers_bbox_preds = self.fc_reg(self.activate(self.reg_ffn(hidden_states))).sigmoid()
        return layers_cls_scores, layers_bbox_preds

    # ---------------------------------------------------------------- losses
    def loss(self, hidden_states: Tensor, batch_data_samples: SampleList) -> dict:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        return self.loss_by_feat(*self(hidden_states), batch_gt_instances, batch_img_metas)

    def loss_by_feat(self, all_layers_cls_scores: Tensor, all_layers_bbox_preds: Tensor,
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore=None) -> Dict[str, Tensor]:
        """Losses of every decoder layer, named as MMDetection names them."""
        if batch_gt_instances_ignore is not None:
            raise ValueError(f'{type(self).__name__} does not support ignored instances')
        per_layer = {'loss_cls': [], 'loss_bbox': [], 'loss_iou': []}
        for cls_scores, bbox_preds in zip(all_layers_cls_scores, all_layers_bbox_preds):
            for name, value in zip(per_layer, self.loss_by_feat_single(
                    cls_scores, bbox_preds, batch_gt_instances, batch_img_metas)):
                per_layer[name].append(value)
        return name_layer_losses(per_layer)

    def loss_by_feat_single(self, cls_scores: Tensor, bbox_preds: Tensor,
                            batch_gt_instances: List[InstanceData],
                            batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """Classification, L1 and IoU losses of one layer's (B, Q, ...) outputs."""
        targets = self.get_targets(list(cls_scores), list(bbox_preds), batch_gt_instances,
                                   batch_img_metas)
        return self._losses_from_targets(cls_scores, bbox_preds, targets, batch_img_metas)

    def _losses_from_targets(self, cls_scores: Tensor, bbox_preds: Tensor, targets: tuple,
                             batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        (labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, num_total_pos,
         num_total_neg) = targets
        labels = torch.cat(labels_list, 0)
        label_weights = torch.cat(label_weights_list, 0)
        bbox_targets = torch.cat(bbox_targets_list, 0)
        bbox_weights = torch.cat(bbox_weights_list, 0)
        cls_scores = cls_scores.reshape(-1, self.cls_out_channels)
        cls_avg_factor = num_total_pos * 1.0 + num_total_neg * self.bg_cls_weight
        if self.sync_cls_avg_factor:
            cls_avg_factor = reduce_mean(cls_scores.new_tensor([cls_avg_factor]))
        cls_avg_factor = max(cls_avg_factor, 1)
        if len(cls_scores) > 0:
            loss_cls = self.loss_cls(cls_scores, labels, label_weights, avg_factor=cls_avg_factor)
        else:
            loss_cls = cls_scores.new_zeros(1)
        num_total_pos = loss_cls.new_tensor([num_total_pos])
        num_total_pos = torch.clamp(reduce_mean(num_total_pos), min=1).item()
        factors = image_factors(batch_img_metas, bbox_preds.size(1), bbox_preds)
        bbox_preds = bbox_preds.reshape(-1, 4)
        bboxes = bbox_cxcywh_to_xyxy(bbox_preds) * factors
        bboxes_gt = bbox_cxcywh_to_xyxy(bbox_targets) * factors
        loss_iou = self.loss_iou(bboxes, bboxes_gt, bbox_weights, avg_factor=num_total_pos)
        loss_bbox = self.loss_bbox(bbox_preds, bbox_targets, bbox_weights,
                                   avg_factor=num_total_pos)
        return loss_cls, loss_bbox, loss_iou

    def get_targets(self, cls_scores_list: List[Tensor], bbox_preds_list: List[Tensor],
                    batch_gt_instances: List[InstanceData], batch_img_metas: List[dict]) -> tuple:
        """Per-image targets and the total positives and negatives."""
        per_image = [
            self._get_targets_single(*args)
            for args in zip(cls_scores_list, bbox_preds_list, batch_gt_instances, batch_img_metas)
        ]
        labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds = zip(*per_image)
        return (list(labels), list(label_weights), list(bbox_targets), list(bbox_weights),
                sum(inds.numel() for inds in pos_inds), sum(inds.numel() for inds in neg_inds))

    def _get_targets_single(self, cls_score: Tensor, bbox_pred: Tensor,
                            gt_instances: InstanceData, img_meta: dict) -> tuple:
        """Hungarian-match one image's (Q, ...) predictions.

        Returns:
            tuple: labels (Q,) (``num_classes`` = background), label weights
            (Q,), normalised ``cx, cy, w, h`` box targets (Q, 4), box weights
            (Q, 4), positive and negative query indices.
        """
        img_h, img_w = img_meta['img_shape'][:2]
        factor = bbox_pred.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
        num_bboxes = bbox_pred.size(0)
        bbox_pred = bbox_cxcywh_to_xyxy(bbox_pred) * factor
        pred_instances = InstanceData(scores=cls_score, bboxes=bbox_pred)
        assign_result = self.assigner.assign(pred_instances=pred_instances,
                                             gt_instances=gt_instances, img_meta=img_meta)
        gt_bboxes = gt_instances.bboxes
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).squeeze(-1).unique()
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).squeeze(-1).unique()
        pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        labels = gt_bboxes.new_full((num_bboxes, ), self.num_classes, dtype=torch.long)
        labels[pos_inds] = gt_instances.labels[pos_assigned_gt_inds]
        label_weights = gt_bboxes.new_ones(num_bboxes)
        bbox_targets = torch.zeros_like(bbox_pred, dtype=gt_bboxes.dtype)
        bbox_weights = torch.zeros_like(bbox_pred, dtype=gt_bboxes.dtype)
        bbox_weights[pos_inds] = 1.0
        bbox_targets[pos_inds] = bbox_xyxy_to_cxcywh(gt_bboxes[pos_assigned_gt_inds] / factor)
        return labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds

    # ----------------------------------------------------------- prediction
    def loss_and_predict(self, hidden_states: Tensor,
                         batch_data_samples: SampleList) -> Tuple[dict, List[InstanceData]]:
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        outs = self(hidden_states)
        losses = self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas)
        return losses, self.predict_by_feat(*outs, batch_img_metas=batch_img_metas)

    def predict(self, hidden_states: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> List[InstanceData]:
        """Detections of the last decoder layer."""
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        outs = self(hidden_states[-1].unsqueeze(0))
        return self.predict_by_feat(*outs, batch_img_metas=batch_img_metas, rescale=rescale)

    def predict_by_feat(self, layer_cls_scores: Tensor, layer_bbox_preds: Tensor,
                        batch_img_metas: List[dict], rescale: bool = True) -> List[InstanceData]:
        """Detections from the last layer of (num_layers, B, Q, ...) outputs."""
        return [
            self._predict_by_feat_single(cls_score, bbox_pred, img_meta, rescale)
            for cls_score, bbox_pred, img_meta in zip(layer_cls_scores[-1], layer_bbox_preds[-1],
                                                      batch_img_metas)
        ]

    def _predict_by_feat_single(self, cls_score: Tensor, bbox_pred: Tensor, img_meta: dict,
                                rescale: bool = True) -> InstanceData:
        """Top ``max_per_img`` (query, class) pairs of one image.

        With sigmoid scores every (query, class) pair competes; with softmax
        each query offers its best object class.
        """
        max_per_img = self.test_cfg.get('max_per_img', len(cls_score))
        img_h, img_w = img_meta['img_shape'][:2]
        if self.loss_cls.use_sigmoid:
            scores, indexes = cls_score.sigmoid().view(-1).topk(max_per_img)
            det_labels = indexes % self.num_classes
            bbox_pred = bbox_pred[indexes // self.num_classes]
        else:
            scores, det_labels = F.softmax(cls_score, dim=-1)[..., :-1].max(-1)
            scores, bbox_index = scores.topk(max_per_img)
            bbox_pred = bbox_pred[bbox_index]
            det_labels = det_labels[bbox_index]
        det_bboxes = bbox_cxcywh_to_xyxy(bbox_pred)
        det_bboxes[:, 0::2] = (det_bboxes[:, 0::2] * img_w).clamp(min=0, max=img_w)
        det_bboxes[:, 1::2] = (det_bboxes[:, 1::2] * img_h).clamp(min=0, max=img_h)
        if rescale:
            if img_meta.get('scale_factor') is None:
                raise KeyError(f'{type(self).__name__}: rescale=True needs scale_factor in the '
                               f'image metainfo')
            det_bboxes /= det_bboxes.new_tensor(img_meta['scale_factor']).repeat((1, 2))
        return InstanceData(bboxes=det_bboxes, scores=scores, labels=det_labels)
