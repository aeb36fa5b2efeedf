"""AnchorHead: the training targets and losses of anchor-based dense heads.

Subclasses own their layers (``_init_layers``) and ``forward_single``; this
class turns head outputs into losses, with targets from the assigner, sampler
and box coder in ``task_modules``. Detections come from
:class:`BaseDenseHead`'s one decode / NMS / rescale path.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.models.task_modules.assigners import NEGATIVE_GT_IND
from detlab.registry import MODELS, TASK_UTILS
from ..utils import (assigns_whole_batch, batch_valid_flags, gathers_positives,
                     images_to_levels, inside_image, logits_for_loss, multi_apply,
                     pad_gt_instances)
from .base_dense_head import BaseDenseHead


@dataclass
class AnchorTargets:
    """Training targets for every anchor of every image in a batch (or of one
    image, without the leading B).

    Attributes:
        labels (Tensor): (B, N) class index per anchor; ``num_classes`` = background.
        label_weights (Tensor): (B, N) 1 for anchors that count in the class loss.
        bbox_targets (Tensor): (B, N, 4) encoded regression targets (or boxes
            when the head regresses decoded boxes).
        bbox_weights (Tensor): (B, N, 4) 1 for positive anchors.
        avg_factor (float | Tensor): what the losses are normalised by: the sum
            over images of each image's positives, at least 1 per image (as
            MMDetection); a 0-dim tensor from the batched path, so it needs no sync.
    """
    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    bbox_weights: Tensor
    avg_factor: Union[float, Tensor]


@MODELS.register_module()
class AnchorHead(BaseDenseHead):
    """Anchor-based dense head with MMDetection's config keys.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input feature map.
        feat_channels (int): Channels of the hidden convs.
        anchor_generator (dict): TASK_UTILS config of the prior generator.
        bbox_coder (dict): TASK_UTILS config of the box coder.
        reg_decoded_bbox (bool): Compute the box loss on decoded boxes (for IoU losses).
        loss_cls (dict): Classification loss; ``use_sigmoid=False`` gives a
            softmax classifier with ``num_classes + 1`` outputs, background last.
        loss_bbox (dict): Regression loss.
        train_cfg (dict): ``assigner``, ``sampler``, ``allowed_border``, ``pos_weight``.
        test_cfg (dict): ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``, ``min_bbox_size``.
        init_cfg (dict): mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 anchor_generator: dict = dict(
                     type='AnchorGenerator', scales=[8, 16, 32], ratios=[0.5, 1.0, 2.0],
                     strides=[4, 8, 16, 32, 64]),
                 bbox_coder: dict = dict(
                     type='DeltaXYWHBBoxCoder', clip_border=True,
                     target_means=(.0, .0, .0, .0), target_stds=(1.0, 1.0, 1.0, 1.0)),
                 reg_decoded_bbox: bool = False,
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 loss_bbox: dict = dict(type='SmoothL1Loss', beta=1.0 / 9.0, loss_weight=1.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Conv2d', std=0.01)) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        # A softmax classifier has one more output, the background (last).
        self.use_sigmoid_cls = loss_cls.get('use_sigmoid', False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        self.reg_decoded_bbox = reg_decoded_bbox
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.sampler = TASK_UTILS.build(train_cfg.get('sampler', dict(type='PseudoSampler')))
        self._init_layers()

    def _init_layers(self) -> None:
        self.conv_cls = torch.nn.Conv2d(self.in_channels,
                                        self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = torch.nn.Conv2d(self.in_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.conv_cls(x), self.conv_reg(x)

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Run the head on every level.

        Returns:
            tuple: ``cls_scores`` (list of (B, A*C, H, W)) and ``bbox_preds``
            (list of (B, A*4, H, W)), one entry per level.
        """
        return multi_apply(self.forward_single, x)

    # ---- training -------------------------------------------------------
    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, List[Tensor]]:
        """Losses of a batch, per level (targets assigned for all levels at once).

        Returns:
            dict: ``loss_cls`` and ``loss_bbox``, each a list of one scalar
            per level, all normalised by the same ``avg_factor`` (their sum is
            the loss over every anchor).
        """
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        mlvl_anchors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=cls_scores[0].device)
        targets = self.get_targets(torch.cat(mlvl_anchors), featmap_sizes, batch_gt_instances,
                                   batch_img_metas, batch_gt_instances_ignore)
        num_level_anchors = [len(anchors) for anchors in mlvl_anchors]
        batch = len(batch_img_metas)
        losses_cls, losses_bbox = multi_apply(
            self.loss_by_feat_single, cls_scores, bbox_preds,
            [anchors.expand(batch, -1, -1) for anchors in mlvl_anchors],
            *[images_to_levels(target, num_level_anchors)
              for target in (targets.labels, targets.label_weights, targets.bbox_targets,
                             targets.bbox_weights)],
            avg_factor=targets.avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)

    def loss_by_feat_single(self, cls_score: Tensor, bbox_pred: Tensor, anchors: Tensor,
                            labels: Tensor, label_weights: Tensor, bbox_targets: Tensor,
                            bbox_weights: Tensor, avg_factor: Union[float, Tensor]
                            ) -> Tuple[Tensor, Tensor]:
        """Losses of one level.

        Args:
            cls_score (Tensor): (B, A*C, H, W) logits.
            bbox_pred (Tensor): (B, A*4, H, W) box deltas.
            anchors (Tensor): (B, H*W*A, 4) anchors.
            labels, label_weights (Tensor): (B, H*W*A) targets.
            bbox_targets, bbox_weights (Tensor): (B, H*W*A, 4) targets.
            avg_factor (float | Tensor): Normaliser shared by every level.

        Returns:
            tuple: ``loss_cls`` and ``loss_bbox`` of the level, fp32 also
            under mixed precision (targets and anchors are fp32).
        """
        labels = labels.reshape(-1)
        cls_score = logits_for_loss(
            self.loss_cls, cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels),
            labels)
        loss_cls = self.loss_cls(cls_score, labels, label_weights.reshape(-1),
                                 avg_factor=avg_factor)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4).float()
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.reshape(-1, 4), bbox_pred)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets.reshape(-1, 4),
                                   bbox_weights.reshape(-1, 4), avg_factor=avg_factor)
        return loss_cls, loss_bbox

    @torch.no_grad()
    def get_targets(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                    batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                    batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                    ) -> AnchorTargets:
        """Assign every anchor of every image to a gt box or to the background.

        The whole batch at once when the assigner and sampler say they can
        (``assigner.can_assign_batch(...)`` and ``sampler.supports_batch``),
        else image by image.

        Args:
            anchors (Tensor): (N, 4) anchors of all levels, concatenated.
            featmap_sizes (list): (h, w) of each level.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (K, 4), ``labels`` (K,).
            batch_img_metas (list[dict]): ``pad_shape`` and ``img_shape`` per image.
            batch_gt_instances_ignore (list, optional): boxes to ignore, per image.
        """
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_img_metas)
        if (self.targets_run_batched(batch_gt_instances, batch_gt_instances_ignore)
                or self.draws_whole_batch(anchors, batch_gt_instances,
                                          batch_gt_instances_ignore)):
            return self._get_targets_batched(anchors, featmap_sizes, batch_gt_instances,
                                             batch_img_metas)
        per_image = [
            self._get_targets_single(anchors, featmap_sizes, gt, meta, ignore)
            for gt, meta, ignore in zip(batch_gt_instances, batch_img_metas,
                                        batch_gt_instances_ignore)
        ]
        return AnchorTargets(
            labels=torch.stack([t.labels for t in per_image]),
            label_weights=torch.stack([t.label_weights for t in per_image]),
            bbox_targets=torch.stack([t.bbox_targets for t in per_image]),
            bbox_weights=torch.stack([t.bbox_weights for t in per_image]),
            avg_factor=float(sum(t.avg_factor for t in per_image)))

    def targets_run_batched(self, batch_gt_instances: List[InstanceData],
                            batch_gt_instances_ignore: List[Optional[InstanceData]]) -> bool:
        """Whether the assigner and sampler declare they can handle this batch
        at once; an assigner without ``can_assign_batch`` or a sampler
        without ``supports_batch`` runs image by image."""
        return assigns_whole_batch(self.assigner, self.sampler, batch_gt_instances,
                                   batch_gt_instances_ignore)

    def draws_whole_batch(self, anchors: Tensor, batch_gt_instances: List[InstanceData],
                          batch_gt_instances_ignore: List[Optional[InstanceData]]) -> bool:
        """Whether a random sampler (one with ``sample_batch``, e.g. the RPN's
        RandomSampler) draws the whole batch's samples at once: off the CPU,
        where the per-image path's gathers (``anchors[inside]``,
        ``nonzero``, ``randperm``) would make the host wait for the device
        (see :func:`gathers_positives`), when the assigner can assign the
        batch and the sampler does not add the gts as proposals. On the CPU
        the sampler draws image by image, MMDetection's random numbers."""
        can_assign_batch = getattr(self.assigner, 'can_assign_batch', None)
        return (hasattr(self.sampler, 'sample_batch') and not gathers_positives(anchors)
                and not getattr(self.sampler, 'add_gt_as_proposals', False)
                and can_assign_batch is not None
                and can_assign_batch(batch_gt_instances, batch_gt_instances_ignore))

    def _valid_priors(self, priors: Tensor, featmap_sizes: List[torch.Size],
                      batch_img_metas: List[dict]) -> Tensor:
        """(B, P) priors that take part in assignment: inside each image's padded area,
        and with ``train_cfg.allowed_border >= 0`` within that border of its image (MMDetection
        tests every column of the priors against the image, as here)."""
        pad_shapes = [tuple(meta.get('pad_shape', meta['img_shape'])[:2])
                      for meta in batch_img_metas]
        prior_valid = batch_valid_flags(self.prior_generator.strides,
                                        self.prior_generator.num_base_priors, featmap_sizes,
                                        pad_shapes, priors.device)
        allowed_border = self.train_cfg.get('allowed_border', -1)
        if allowed_border >= 0:
            img_shapes = [meta['img_shape'][:2] for meta in batch_img_metas]
            prior_valid &= inside_image(priors, img_shapes, allowed_border)
        return prior_valid

    def _get_targets_batched(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                             batch_gt_instances: List[InstanceData],
                             batch_img_metas: List[dict]) -> AnchorTargets:
        """The targets of :meth:`_get_targets_single` for every image at once.

        gts are padded per batch; no Python loop over images or boxes and no
        host-device synchronisation (``avg_factor`` stays a tensor). A sampler
        with ``sample_batch`` draws the positives and negatives that count.
        """
        device, batch = anchors.device, len(batch_img_metas)
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances, device)
        prior_valid = self._valid_priors(anchors, featmap_sizes, batch_img_metas)
        gt_inds, _ = self.assigner.assign_batch(anchors, prior_valid, gt_bboxes, gt_valid)

        pos, neg = gt_inds > NEGATIVE_GT_IND, gt_inds == NEGATIVE_GT_IND  # (B, N)
        sample_batch = getattr(self.sampler, 'sample_batch', None)
        if sample_batch is not None:
            pos, neg = sample_batch(pos, neg)
            # A random sampler's SamplingResult counts its negatives too, each
            # count at least 1 per image.
            avg_factor = (pos.sum(dim=1).clamp(min=1) + neg.sum(dim=1).clamp(min=1)).sum()
        else:
            avg_factor = pos.sum(dim=1).clamp(min=1).sum()
        matched = (gt_inds - 1).clamp(min=0)
        matched_bboxes = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))  # (B, N, 4)
        labels = torch.where(pos, gt_labels.gather(1, matched), self.num_classes)
        pos_weight = self.train_cfg.get('pos_weight', -1)
        label_weights = torch.where(pos, 1.0 if pos_weight <= 0 else pos_weight, neg.float())
        if self.reg_decoded_bbox:
            bbox_targets = matched_bboxes
        else:
            bbox_targets = self.bbox_coder.encode(
                anchors.expand(batch, -1, -1).reshape(-1, 4),
                matched_bboxes.reshape(-1, 4)).reshape(batch, -1, 4)
        bbox_targets = torch.where(pos[..., None], bbox_targets, 0.)
        bbox_weights = pos[..., None].expand(-1, -1, 4).float()
        return AnchorTargets(labels, label_weights, bbox_targets, bbox_weights,
                             avg_factor.float())

    def _get_targets_single(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                            gt_instances: InstanceData, img_meta: dict,
                            gt_instances_ignore: Optional[InstanceData]) -> AnchorTargets:
        """Targets of one image: the same fields without the batch dimension."""
        num_anchors = anchors.shape[0]
        inside = self._inside_flags(anchors, featmap_sizes, img_meta)
        candidates = InstanceData(priors=anchors[inside])
        if gt_instances_ignore is not None and len(gt_instances_ignore) == 0:
            gt_instances_ignore = None
        assign_result = self.assigner.assign(candidates, gt_instances, gt_instances_ignore)
        sampling = self.sampler.sample(assign_result, candidates, gt_instances)

        labels = anchors.new_full((num_anchors,), self.num_classes, dtype=torch.long)
        label_weights = anchors.new_zeros(num_anchors)
        bbox_targets = anchors.new_zeros(num_anchors, 4)
        bbox_weights = anchors.new_zeros(num_anchors, 4)
        inside_index = inside.nonzero(as_tuple=True)[0]
        pos_index = inside_index[sampling.pos_inds]
        neg_index = inside_index[sampling.neg_inds]
        if len(pos_index) > 0:
            if self.reg_decoded_bbox:
                bbox_targets[pos_index] = sampling.pos_gt_bboxes
            else:
                bbox_targets[pos_index] = self.bbox_coder.encode(sampling.pos_priors,
                                                                 sampling.pos_gt_bboxes)
            bbox_weights[pos_index] = 1.0
            labels[pos_index] = sampling.pos_gt_labels
            pos_weight = self.train_cfg.get('pos_weight', -1)
            label_weights[pos_index] = 1.0 if pos_weight <= 0 else pos_weight
        label_weights[neg_index] = 1.0
        return AnchorTargets(labels, label_weights, bbox_targets, bbox_weights,
                             float(sampling.avg_factor))

    def _inside_flags(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                      img_meta: dict) -> Tensor:
        """Anchors that may take part in training: on the image's own padded
        feature map and, unless ``allowed_border`` is negative, inside the image."""
        pad_shape = img_meta.get('pad_shape', img_meta['img_shape'])
        valid = torch.cat(self.prior_generator.valid_flags(featmap_sizes, pad_shape[:2],
                                                           device=anchors.device))
        allowed_border = self.train_cfg.get('allowed_border', -1)
        if allowed_border < 0:
            return valid
        return valid & inside_image(anchors, [img_meta['img_shape'][:2]], allowed_border)[0]
