"""BBoxHead: R-CNN's per-RoI classifier and class-specific box regressor.

Label convention (MMDetection's): classes ``0 .. num_classes - 1`` are
foreground, ``num_classes`` is background; the classifier has
``num_classes + 1`` outputs, background last.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from detlab.models.layers.bbox_nms import multiclass_nms
from detlab.models.losses.accuracy import accuracy
from detlab.models.task_modules.samplers import SamplingResult, SlotSamplingResult
from detlab.models.utils import (bboxes_to_original, dense_box_loss, empty_instances,
                                 gathers_positives)
from detlab.registry import MODELS, TASK_UTILS

# The predictors are built from ``dict(type='Linear')`` configs, as in MMDetection.
MODELS.register_module('Linear', module=nn.Linear)


@dataclass
class RoITargets:
    """Training targets of the sampled RoIs of a batch, images concatenated
    in order, each image's positives first.

    Attributes:
        labels (Tensor): (R,) class per RoI; ``num_classes`` = background.
        label_weights (Tensor): (R,) weight in the class loss.
        bbox_targets (Tensor): (R, 4) encoded targets (boxes with
            ``reg_decoded_bbox``); zero for negatives.
        bbox_weights (Tensor): (R, 4) 1 for positives.
    """
    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    bbox_weights: Tensor


@MODELS.register_module()
class BBoxHead(BaseModule):
    """Two linear layers on (optionally average-pooled) RoI features.

    State_dict keys as MMDetection's: ``fc_cls`` (num_classes + 1 outputs),
    ``fc_reg`` (4 outputs, or 4 per class).

    Args:
        with_avg_pool (bool): Average-pool the RoI feature before the fcs.
        with_cls (bool): Have a classifier.
        with_reg (bool): Have a box regressor.
        roi_feat_size (int | tuple[int, int]): Size of the RoI features.
        in_channels (int): Channels of the RoI features.
        num_classes (int): Foreground classes.
        bbox_coder (dict): TASK_UTILS config of the box coder.
        predict_box_type (str): Only ``'hbox'`` (x1, y1, x2, y2).
        reg_class_agnostic (bool): One box per RoI instead of one per class.
        reg_decoded_bbox (bool): Box loss on decoded boxes (IoU losses).
        reg_predictor_cfg (dict): Config of ``fc_reg``.
        cls_predictor_cfg (dict): Config of ``fc_cls``.
        loss_cls (dict): Classification loss (softmax over num_classes + 1).
        loss_bbox (dict): Box regression loss.
        init_cfg (dict | list, optional): Defaults to Normal(0.01) for
            ``fc_cls`` and Normal(0.001) for ``fc_reg``, as MMDetection.
    """

    def __init__(self,
                 with_avg_pool: bool = False,
                 with_cls: bool = True,
                 with_reg: bool = True,
                 roi_feat_size: int = 7,
                 in_channels: int = 256,
                 num_classes: int = 80,
                 bbox_coder: dict = dict(
                     type='DeltaXYWHBBoxCoder', clip_border=True,
                     target_means=[0., 0., 0., 0.], target_stds=[0.1, 0.1, 0.2, 0.2]),
                 predict_box_type: str = 'hbox',
                 reg_class_agnostic: bool = False,
                 reg_decoded_bbox: bool = False,
                 reg_predictor_cfg: dict = dict(type='Linear'),
                 cls_predictor_cfg: dict = dict(type='Linear'),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=False,
                                       loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (with_cls or with_reg):
            raise ValueError(f'{type(self).__name__} needs with_cls or with_reg (or both).')
        if predict_box_type != 'hbox':
            raise ValueError(f"predict_box_type={predict_box_type!r} is not supported; detlab "
                             "predicts horizontal boxes, 'hbox'.")
        self.with_avg_pool = with_avg_pool
        self.with_cls = with_cls
        self.with_reg = with_reg
        self.roi_feat_size = _pair(roi_feat_size)
        self.roi_feat_area = self.roi_feat_size[0] * self.roi_feat_size[1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.predict_box_type = predict_box_type
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.reg_predictor_cfg = reg_predictor_cfg
        self.cls_predictor_cfg = cls_predictor_cfg
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        if getattr(self.loss_cls, 'use_sigmoid', False):
            raise ValueError(f'{type(self).__name__} classifies with a softmax over '
                             'num_classes + 1; set loss_cls.use_sigmoid=False.')

        in_features = in_channels
        if with_avg_pool:
            self.avg_pool = nn.AvgPool2d(self.roi_feat_size)
        else:
            in_features *= self.roi_feat_area
        self._build_predictors(in_features, in_features)
        if init_cfg is None:
            self.init_cfg = []
            if with_cls:
                self.init_cfg.append(dict(type='Normal', std=0.01, override=dict(name='fc_cls')))
            if with_reg:
                self.init_cfg.append(dict(type='Normal', std=0.001, override=dict(name='fc_reg')))

    def _build_predictors(self, cls_in_features: int, reg_in_features: int) -> None:
        """(Re)build ``fc_cls`` and ``fc_reg`` for the given input widths."""
        if self.with_cls:
            self.fc_cls = MODELS.build(dict(self.cls_predictor_cfg, in_features=cls_in_features,
                                            out_features=self.num_classes + 1))
        if self.with_reg:
            box_dim = self.bbox_coder.encode_size
            out_features = box_dim if self.reg_class_agnostic else box_dim * self.num_classes
            self.fc_reg = MODELS.build(dict(self.reg_predictor_cfg, in_features=reg_in_features,
                                            out_features=out_features))

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(K, C, h, w) RoI features -> ``cls_score`` (K, num_classes + 1) and
        ``bbox_pred`` (K, 4) or (K, 4 * num_classes); None for a missing branch."""
        if self.with_avg_pool:
            x = self.avg_pool(x) if x.numel() > 0 else x.mean(dim=(-1, -2), keepdim=True)
        x = x.flatten(1)
        cls_score = self.fc_cls(x) if self.with_cls else None
        bbox_pred = self.fc_reg(x) if self.with_reg else None
        return cls_score, bbox_pred

    # ---- training -------------------------------------------------------
    def get_targets(self, sampling_results: Sequence[SamplingResult],
                    rcnn_train_cfg: dict) -> RoITargets:
        """Targets of every sampled RoI, images in order, positives first.

        Args:
            sampling_results (list[SamplingResult]): One per image.
            rcnn_train_cfg (dict): R-CNN ``train_cfg`` (``pos_weight``).
        """
        pos_weight = rcnn_train_cfg.get('pos_weight', -1) if rcnn_train_cfg else -1
        pos_weight = 1.0 if pos_weight <= 0 else pos_weight
        labels, label_weights, bbox_targets, bbox_weights = [], [], [], []
        for res in sampling_results:
            if isinstance(res, SlotSamplingResult):
                for targets, target in zip((labels, label_weights, bbox_targets, bbox_weights),
                                           self._slot_targets(res, pos_weight)):
                    targets.append(target)
                continue
            num_pos, num_neg = len(res.pos_priors), len(res.neg_priors)
            priors = res.pos_priors
            labels += [res.pos_gt_labels.long(),
                       priors.new_full((num_neg, ), self.num_classes, dtype=torch.long)]
            label_weights += [priors.new_full((num_pos, ), pos_weight), priors.new_ones(num_neg)]
            if self.reg_decoded_bbox:
                pos_targets = res.pos_gt_bboxes
            else:
                pos_targets = self.bbox_coder.encode(res.pos_priors, res.pos_gt_bboxes)
            bbox_targets += [pos_targets, priors.new_zeros(num_neg, pos_targets.size(-1))]
            bbox_weights += [torch.ones_like(pos_targets),
                             priors.new_zeros(num_neg, pos_targets.size(-1))]
        return RoITargets(torch.cat(labels), torch.cat(label_weights), torch.cat(bbox_targets),
                          torch.cat(bbox_weights))

    def _slot_targets(self, res: SlotSamplingResult, pos_weight: float) -> tuple:
        """``labels``, ``label_weights``, ``bbox_targets``, ``bbox_weights``
        of every slot of ``res``: those of :meth:`get_targets` on the used
        slots, zero weights on the unused ones (no gather)."""
        pos = res.pos_mask
        priors = res.slot_priors
        labels = torch.where(pos, res.slot_labels.long(), self.num_classes)
        label_weights = torch.where(pos, pos_weight, res.neg_mask.to(priors.dtype))
        if self.reg_decoded_bbox:
            targets = res.slot_gt_bboxes
        else:
            targets = self.bbox_coder.encode(priors, res.slot_gt_bboxes)
        # Off the positives the encoding may divide by a zero-size box; it is not kept.
        targets = torch.where(pos[:, None], targets, 0.)
        return labels, label_weights, targets, pos[:, None].expand_as(targets).to(targets.dtype)

    def loss_and_target(self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor,
                        sampling_results: Sequence[SamplingResult], rcnn_train_cfg: dict,
                        reduction_override: Optional[str] = None) -> dict:
        """Losses of the sampled RoIs.

        Returns:
            dict: ``loss_bbox`` (the dict of losses: ``loss_cls``, ``acc``,
            ``loss_bbox``) and ``bbox_targets`` (:class:`RoITargets`).
        """
        targets = self.get_targets(sampling_results, rcnn_train_cfg)
        losses = self.loss(cls_score, bbox_pred, rois, targets.labels, targets.label_weights,
                           targets.bbox_targets, targets.bbox_weights,
                           reduction_override=reduction_override)
        return dict(loss_bbox=losses, bbox_targets=targets)

    def loss(self, cls_score: Optional[Tensor], bbox_pred: Optional[Tensor], rois: Tensor,
             labels: Tensor, label_weights: Tensor, bbox_targets: Tensor, bbox_weights: Tensor,
             reduction_override: Optional[str] = None) -> dict:
        """Class loss over all sampled RoIs, box loss over the positives.

        Args:
            cls_score (Tensor): (R, num_classes + 1) logits.
            bbox_pred (Tensor): (R, 4) or (R, 4 * num_classes) deltas.
            rois (Tensor): (R, 5) ``batch_index, x1, y1, x2, y2``.
            labels, label_weights, bbox_targets, bbox_weights (Tensor): as
                in :class:`RoITargets`.
            reduction_override (str, optional): 'none', 'mean' or 'sum'.

        Returns:
            dict: ``loss_cls`` and ``acc`` (percent) with a classifier,
            ``loss_bbox`` with a regressor. The class loss is averaged over
            RoIs with a positive weight, the box loss over all R RoIs.

        On the CPU the box loss gathers the positive RoIs (MMDetection's
        numbers bit for bit); elsewhere (see :func:`gathers_positives`) it runs
        over every RoI with zero weight off the positives, and the counts stay
        tensors, so that the host never waits for the device (the same values
        to float rounding). There the RoIs with zero label weight (unused
        slots of :class:`SlotSamplingResult`) count nowhere: the box loss is
        averaged over the others, and ``acc`` is theirs (every RoI has a
        positive label weight in :meth:`get_targets` of SamplingResults).
        ``reduction_override='none'`` always gathers: its loss has one row
        per positive.
        """
        losses = dict()
        on_device = not gathers_positives(labels)
        num_sampled = (label_weights > 0).sum().clamp(min=1).float() if on_device else None
        if cls_score is not None:
            avg_factor = (num_sampled if on_device
                          else max(float((label_weights > 0).sum()), 1.))
            if cls_score.numel() > 0:
                losses['loss_cls'] = self.loss_cls(cls_score, labels, label_weights,
                                                   avg_factor=avg_factor,
                                                   reduction_override=reduction_override)
                if on_device:
                    hits = (cls_score.argmax(dim=1) == labels) & (label_weights > 0)
                    losses['acc'] = hits.sum(0, keepdim=True) * (100.0 / num_sampled)
                else:
                    losses['acc'] = accuracy(cls_score, labels)
        if bbox_pred is not None:
            pos = (labels >= 0) & (labels < self.num_classes)
            if on_device and reduction_override != 'none':
                losses['loss_bbox'] = self._dense_box_loss(bbox_pred, rois, labels, pos,
                                                           bbox_targets, bbox_weights,
                                                           num_sampled, reduction_override)
            elif pos.any():
                if self.reg_decoded_bbox:
                    bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
                if self.reg_class_agnostic:
                    pos_pred = bbox_pred[pos]
                else:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)[
                        pos, labels[pos]]
                losses['loss_bbox'] = self.loss_bbox(pos_pred, bbox_targets[pos],
                                                     bbox_weights[pos],
                                                     avg_factor=bbox_targets.size(0),
                                                     reduction_override=reduction_override)
            else:
                losses['loss_bbox'] = bbox_pred[pos].sum()
        return losses

    def _dense_box_loss(self, bbox_pred: Tensor, rois: Tensor, labels: Tensor, pos: Tensor,
                        bbox_targets: Tensor, bbox_weights: Tensor, avg_factor: Tensor,
                        reduction_override: Optional[str]) -> Tensor:
        """The box loss of :meth:`loss` over every RoI, zero weight off the
        positives: each RoI's prediction for its label's class (a negative's,
        for the last class, gets no weight), no gather of the positives."""
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
        if not self.reg_class_agnostic:
            per_class = bbox_pred.view(bbox_pred.size(0), self.num_classes, -1)
            columns = labels.clamp(min=0, max=self.num_classes - 1)
            bbox_pred = per_class.gather(
                1, columns[:, None, None].expand(-1, 1, per_class.size(2))).squeeze(1)
        return dense_box_loss(self.loss_bbox, bbox_pred, bbox_targets, pos,
                              weight=bbox_weights, avg_factor=avg_factor,
                              reduction_override=reduction_override)

    # ---- inference ------------------------------------------------------
    def predict_by_feat(self, rois: Sequence[Tensor], cls_scores: Sequence[Tensor],
                        bbox_preds: Sequence[Optional[Tensor]], batch_img_metas: List[dict],
                        rcnn_test_cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Detections of each image.

        Args:
            rois (list[Tensor]): (K_i, 5) RoIs per image.
            cls_scores (list[Tensor]): (K_i, num_classes + 1) logits per image.
            bbox_preds (list[Tensor | None]): (K_i, 4 or 4 * num_classes) deltas.
            batch_img_metas (list[dict]): ``img_shape`` and ``scale_factor``.
            rcnn_test_cfg (dict, optional): ``score_thr``, ``nms``,
                ``max_per_img``. Without it the raw per-class boxes (K_i,
                4 * num_classes) and scores (K_i, num_classes + 1) come back.
            rescale (bool): Boxes in the original image's pixels.

        Returns:
            list[InstanceData]: ``bboxes`` (M, 4), ``scores`` (M,), ``labels`` (M,).
        """
        if not len(cls_scores) == len(bbox_preds) == len(rois) == len(batch_img_metas):
            raise ValueError('predict_by_feat needs one rois, cls_score, bbox_pred and img_meta '
                             'per image')
        return [self._predict_by_feat_single(roi, cls_score, bbox_pred, img_meta, rescale,
                                             rcnn_test_cfg)
                for roi, cls_score, bbox_pred, img_meta in zip(rois, cls_scores, bbox_preds,
                                                               batch_img_metas)]

    def _predict_by_feat_single(self, roi: Tensor, cls_score: Tensor,
                                bbox_pred: Optional[Tensor], img_meta: dict, rescale: bool,
                                rcnn_test_cfg: Optional[dict]) -> InstanceData:
        if roi.shape[0] == 0:
            return empty_instances([img_meta], roi.device, num_classes=self.num_classes,
                                   score_per_cls=rcnn_test_cfg is None)[0]
        scores = F.softmax(cls_score, dim=-1) if cls_score is not None else None
        img_shape = img_meta['img_shape']
        if bbox_pred is not None:
            bboxes = self.bbox_coder.decode(roi[:, 1:], bbox_pred, max_shape=img_shape)
        else:
            bboxes = roi[:, 1:].clone()
            bboxes[:, 0::2] = bboxes[:, 0::2].clamp(min=0, max=img_shape[1])
            bboxes[:, 1::2] = bboxes[:, 1::2].clamp(min=0, max=img_shape[0])
        if rescale:
            bboxes = bboxes_to_original(bboxes, img_meta)
        if rcnn_test_cfg is None:
            return InstanceData(bboxes=bboxes, scores=scores)
        dets, labels = multiclass_nms(bboxes, scores, rcnn_test_cfg['score_thr'],
                                      rcnn_test_cfg['nms'], rcnn_test_cfg['max_per_img'],
                                      box_dim=4)
        return InstanceData(bboxes=dets[:, :-1], scores=dets[:, -1], labels=labels)

    # ---- cascades -------------------------------------------------------
    def regress_by_class(self, priors: Tensor, label: Tensor, bbox_pred: Tensor,
                         img_meta: dict) -> Tensor:
        """Decode each prior's box for its class (Cascade R-CNN's refinement).

        Args:
            priors (Tensor): (n, 4) boxes the deltas apply to.
            label (Tensor): (n,) class of each box; unused when the head is
                ``reg_class_agnostic``.
            bbox_pred (Tensor): (n, 4) or (n, 4 * num_classes) deltas.
            img_meta (dict): ``img_shape`` the boxes are clipped to.

        Returns:
            Tensor: (n, 4) boxes.
        """
        box_dim = self.bbox_coder.encode_size
        if not self.reg_class_agnostic:
            columns = label[:, None] * box_dim + torch.arange(box_dim, device=label.device)
            bbox_pred = bbox_pred.gather(1, columns)
        if bbox_pred.size(1) != box_dim:
            raise ValueError(f'regress_by_class needs (n, {box_dim}) deltas per class, got '
                             f'{tuple(bbox_pred.shape)}')
        return self.bbox_coder.decode(priors, bbox_pred, max_shape=img_meta['img_shape'])

    def refine_bboxes(self, sampling_results: Sequence[SamplingResult], bbox_results: dict,
                      batch_img_metas: List[dict]) -> Optional[List[InstanceData]]:
        """The next cascade stage's proposals during training: every sampled
        RoI regressed by this stage, except the gt boxes the sampler added.

        A positive RoI is regressed for its gt's class, a negative one for
        its highest-scoring foreground class.

        Args:
            sampling_results (list[SamplingResult]): One per image, whose
                RoIs (images in order, positives first) ``bbox_results`` holds.
            bbox_results (dict): ``rois`` (R, 5), ``cls_score`` (R, C + 1),
                ``bbox_pred`` (R, 4 or 4C) and ``bbox_targets``
                (:class:`RoITargets`).
            batch_img_metas (list[dict]): ``img_shape`` per image.

        Returns:
            list[InstanceData] | None: ``bboxes`` (n_i, 4) per image; None when
            there are no RoIs at all.
        """
        cls_scores = bbox_results['cls_score']
        if cls_scores.numel() == 0:
            return None
        if cls_scores.size(-1) != self.num_classes + 1:
            raise ValueError(f'cls_score has {cls_scores.size(-1)} columns, expected '
                             f'num_classes + 1 = {self.num_classes + 1}')
        labels = bbox_results['bbox_targets'].labels
        labels = torch.where(labels == self.num_classes, cls_scores[:, :-1].argmax(1), labels)
        rois, bbox_preds = bbox_results['rois'], bbox_results['bbox_pred']
        per_image = [len(res.priors) for res in sampling_results]
        results_list = []
        for res, img_rois, img_labels, img_preds, img_meta in zip(
                sampling_results, rois.split(per_image), labels.split(per_image),
                bbox_preds.split(per_image), batch_img_metas):
            bboxes = self.regress_by_class(img_rois[:, 1:], img_labels, img_preds, img_meta)
            keep = torch.ones(len(bboxes), dtype=torch.bool, device=bboxes.device)
            keep[:len(res.pos_is_gt)] = res.pos_is_gt == 0
            results_list.append(InstanceData(bboxes=bboxes[keep]))
        return results_list
