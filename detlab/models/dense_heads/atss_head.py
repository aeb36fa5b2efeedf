"""ATSSHead (Zhang et al., "Bridging the Gap Between Anchor-based and Anchor-free
Detection via Adaptive Training Sample Selection", 2020)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import Scale
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.bbox import bbox2distance
from detlab.utils import reduce_mean
from ..task_modules.assigners import IGNORED_GT_IND, NEGATIVE_GT_IND
from ..utils import (cls_reg_towers, gathers_positives, images_to_levels, logits_for_loss,
                     multi_apply, pad_gt_instances)
from .anchor_head import AnchorHead, AnchorTargets
from .fcos_head import centerness_from_distances


@MODELS.register_module()
class ATSSHead(AnchorHead):
    """An FCOS-like head on anchors, trained with :class:`ATSSAssigner`.

    Two GN towers; ``atss_cls``, ``atss_reg`` (box deltas, scaled per level by
    ``scales.{i}.scale``) and ``atss_centerness`` from the box tower, as in
    MMDetection (same state_dict keys). The box loss runs on decoded boxes,
    weighted by the centerness of the anchor centre in its gt; detections
    multiply class scores by the sigmoid centerness.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        pred_kernel_size (int): Kernel size of the three predictor convs.
        stacked_convs (int): Convs per tower.
        conv_cfg (dict, optional): Tower conv config.
        norm_cfg (dict): Tower norm config. Defaults to GN with 32 groups.
        reg_decoded_bbox (bool): Must be True: the box loss (GIoU) compares
            decoded boxes.
        loss_centerness (dict): Centerness loss config.
        init_cfg (dict): Normal(0, 0.01) convs, ``atss_cls`` bias at prior
            probability 0.01.
        **kwargs: :class:`AnchorHead`'s arguments (anchor_generator,
            bbox_coder, loss_cls, loss_bbox, train_cfg, test_cfg, ...).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 pred_kernel_size: int = 3,
                 stacked_convs: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 reg_decoded_bbox: bool = True,
                 loss_centerness: dict = dict(
                     type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='atss_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        if not reg_decoded_bbox:
            raise ValueError('ATSSHead: reg_decoded_bbox=False is not supported; its box loss '
                             'and centerness targets work on decoded boxes (set it to True).')
        sampler = (kwargs.get('train_cfg') or {}).get('sampler')
        if sampler is not None and sampler.get('type') != 'PseudoSampler':
            raise ValueError('ATSSHead trains on every anchor: leave train_cfg.sampler out or '
                             f'use PseudoSampler (got sampler={dict(sampler)}).')
        self.pred_kernel_size = pred_kernel_size
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(num_classes, in_channels, reg_decoded_bbox=reg_decoded_bbox,
                         init_cfg=init_cfg, **kwargs)
        self.loss_centerness = MODELS.build(loss_centerness)

    @property
    def num_anchors(self) -> int:
        """int: Anchors per location (MMDetection's older name of ``num_base_priors``)."""
        return self.num_base_priors

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs, self.reg_convs = cls_reg_towers(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg)
        padding = self.pred_kernel_size // 2
        self.atss_cls = nn.Conv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels,
                                  self.pred_kernel_size, padding=padding)
        self.atss_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4,
                                  self.pred_kernel_size, padding=padding)
        self.atss_centerness = nn.Conv2d(self.feat_channels, self.num_base_priors,
                                         self.pred_kernel_size, padding=padding)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.prior_generator.strides])

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Every level.

        Returns:
            tuple: ``cls_scores`` (B, A*C, H, W), ``bbox_preds`` (B, A*4, H, W)
            deltas and ``centernesses`` (B, A, H, W) logits, one entry per level each.
        """
        return multi_apply(self.forward_single, x, self.scales)

    def forward_single(self, x: Tensor, scale: Scale) -> Tuple[Tensor, Tensor, Tensor]:
        cls_feat, reg_feat = self.cls_convs(x), self.reg_convs(x)
        bbox_pred = scale(self.atss_reg(reg_feat)).float()
        return self.atss_cls(cls_feat), bbox_pred, self.atss_centerness(reg_feat)

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     centernesses: List[Tensor],
                     batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, List[Tensor]]:
        """Losses of a batch, per level (targets assigned for all levels at once).

        ``loss_cls`` and ``loss_centerness`` are normalised by the positives
        (averaged over processes), ``loss_bbox`` by the sum of the centerness
        targets of every level.

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, ``loss_centerness``, each a
            list of one scalar per level.
        """
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        mlvl_anchors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=cls_scores[0].device)
        targets = self.get_targets(torch.cat(mlvl_anchors), featmap_sizes, batch_gt_instances,
                                   batch_img_metas, batch_gt_instances_ignore)
        avg_factor = reduce_mean(targets.avg_factor)
        num_level_anchors = [len(anchors) for anchors in mlvl_anchors]
        batch = len(batch_img_metas)
        losses_cls, losses_bbox, losses_centerness, bbox_avg_factors = multi_apply(
            self.loss_by_feat_single, [anchors.expand(batch, -1, -1) for anchors in mlvl_anchors],
            cls_scores, bbox_preds, centernesses,
            *[images_to_levels(target, num_level_anchors)
              for target in (targets.labels, targets.label_weights, targets.bbox_targets)],
            avg_factor=avg_factor)
        bbox_avg_factor = reduce_mean(sum(bbox_avg_factors)).clamp(min=1)
        losses_bbox = [loss_bbox / bbox_avg_factor for loss_bbox in losses_bbox]
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox, loss_centerness=losses_centerness)

    def loss_by_feat_single(self, anchors: Tensor, cls_score: Tensor, bbox_pred: Tensor,
                            centerness: Tensor, labels: Tensor, label_weights: Tensor,
                            bbox_targets: Tensor, avg_factor: Tensor
                            ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Losses of one level.

        Args:
            anchors (Tensor): (B, N_l, 4) anchors.
            cls_score (Tensor): (B, A*C, H, W) logits.
            bbox_pred (Tensor): (B, A*4, H, W) deltas.
            centerness (Tensor): (B, A, H, W) logits.
            labels, label_weights (Tensor): (B, N_l) targets.
            bbox_targets (Tensor): (B, N_l, 4) gt boxes.
            avg_factor (Tensor): Positives of the batch, for the class and
                centerness losses.

        Returns:
            tuple: ``loss_cls``, ``loss_bbox`` (not yet divided by the sum of
            centerness targets), ``loss_centerness`` and this level's sum of
            centerness targets.
        """
        labels = labels.reshape(-1)
        cls_score = logits_for_loss(
            self.loss_cls, cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels),
            labels)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        centerness = centerness.permute(0, 2, 3, 1).reshape(-1).float()
        loss_cls = self.loss_cls(cls_score, labels, label_weights.reshape(-1),
                                 avg_factor=avg_factor)
        pos_mask = (labels >= 0) & (labels < self.num_classes)
        if not gathers_positives(labels):
            return (loss_cls, *self._dense_box_losses(anchors.reshape(-1, 4), pos_mask, bbox_pred,
                                                      centerness, bbox_targets.reshape(-1, 4),
                                                      avg_factor))
        pos_index = pos_mask.nonzero(as_tuple=True)[0]
        if pos_index.numel() == 0:
            return (loss_cls, bbox_pred.sum() * 0, centerness.sum() * 0,
                    bbox_targets.new_tensor(0.))
        pos_anchors = anchors.reshape(-1, 4)[pos_index]
        pos_bbox_targets = bbox_targets.reshape(-1, 4)[pos_index]
        anchor_centres = (pos_anchors[:, :2] + pos_anchors[:, 2:]) / 2
        centerness_targets = centerness_from_distances(
            bbox2distance(anchor_centres, pos_bbox_targets))
        pos_decoded = self.bbox_coder.decode(pos_anchors, bbox_pred[pos_index])
        loss_bbox = self.loss_bbox(pos_decoded, pos_bbox_targets, weight=centerness_targets,
                                   avg_factor=1.0)
        loss_centerness = self.loss_centerness(centerness[pos_index], centerness_targets,
                                               avg_factor=avg_factor)
        return loss_cls, loss_bbox, loss_centerness, centerness_targets.sum().detach()

    def _dense_box_losses(self, anchors: Tensor, pos_mask: Tensor, bbox_pred: Tensor,
                          centerness: Tensor, bbox_targets: Tensor, avg_factor: Tensor
                          ) -> Tuple[Tensor, Tensor, Tensor]:
        """:meth:`loss_by_feat_single`'s ``loss_bbox``, ``loss_centerness``
        and sum of centerness targets over every anchor, with zero weight off
        the positives, without gathering them (see :func:`gathers_positives`).
        Off the positives the deltas are zero and the target is the anchor
        itself, so that boxes and centerness stay finite.

        Args:
            anchors (Tensor): (M, 4) anchors of every image.
            pos_mask (Tensor): (M,) bool positives.
            bbox_pred (Tensor): (M, 4) deltas.
            centerness (Tensor): (M,) logits.
            bbox_targets (Tensor): (M, 4) gt boxes.
            avg_factor (Tensor): Normaliser of the centerness loss.
        """
        bbox_pred = torch.where(pos_mask[:, None], bbox_pred, 0.0)
        bbox_targets = torch.where(pos_mask[:, None], bbox_targets, anchors)
        anchor_centres = (anchors[:, :2] + anchors[:, 2:]) / 2
        centerness_targets = centerness_from_distances(
            bbox2distance(anchor_centres, bbox_targets))
        bbox_weights = torch.where(pos_mask, centerness_targets, 0.0)
        loss_bbox = self.loss_bbox(self.bbox_coder.decode(anchors, bbox_pred), bbox_targets,
                                   weight=bbox_weights, avg_factor=1.0)
        loss_centerness = self.loss_centerness(centerness, centerness_targets,
                                               weight=pos_mask.float(), avg_factor=avg_factor)
        return loss_bbox, loss_centerness, bbox_weights.sum().detach()

    @torch.no_grad()
    def get_targets(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                    batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                    batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                    ) -> AnchorTargets:
        """ATSS-assign every anchor of every image, then build the batch's
        targets at once. The assignment runs on the whole batch when the
        assigner and sampler say they can (``assigner.can_assign_batch(...)``
        and ``sampler.supports_batch``), else image by image (each image on
        its own valid anchors). An image without any valid anchor (possible
        with ``allowed_border >= 0``) is refused image by image; on the whole
        batch its anchors are all ignored, as testing for it would read a
        value back from the device. The arguments are
        :meth:`AnchorHead.get_targets`'s.

        Returns:
            AnchorTargets: ``bbox_targets`` are gt boxes (decoded), ``avg_factor``
            a tensor: the sum over images of max(positives, 1).
        """
        if batch_gt_instances_ignore is None:
            batch_gt_instances_ignore = [None] * len(batch_img_metas)
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances, anchors.device)
        if self.targets_run_batched(batch_gt_instances, batch_gt_instances_ignore):
            num_level_anchors = [size[0] * size[1] * num_base for size, num_base in
                                 zip(featmap_sizes, self.prior_generator.num_base_priors)]
            gt_inds, _, _ = self.assigner.assign_batch(
                anchors, self._valid_priors(anchors, featmap_sizes, batch_img_metas),
                num_level_anchors, gt_bboxes, gt_labels, gt_valid)
        else:
            gt_inds = torch.stack([
                self._assign_single(anchors, featmap_sizes, gt, meta, ignore)
                for gt, meta, ignore in zip(batch_gt_instances, batch_img_metas,
                                            batch_gt_instances_ignore)])  # (B, N)
        positive = gt_inds > NEGATIVE_GT_IND
        matched = (gt_inds - 1).clamp(min=0)
        labels = torch.where(positive, gt_labels.gather(1, matched), self.num_classes)
        bbox_targets = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))
        bbox_targets = torch.where(positive[..., None], bbox_targets, 0.0)
        pos_weight = self.train_cfg.get('pos_weight', -1)
        label_weights = (gt_inds == NEGATIVE_GT_IND).float()
        label_weights += positive.float() * (1.0 if pos_weight <= 0 else pos_weight)
        return AnchorTargets(
            labels=labels, label_weights=label_weights, bbox_targets=bbox_targets,
            bbox_weights=positive[..., None].float().expand(-1, -1, 4),
            avg_factor=positive.sum(dim=1).clamp(min=1).sum().float())

    def _assign_single(self, anchors: Tensor, featmap_sizes: List[torch.Size],
                       gt_instances: InstanceData, img_meta: dict,
                       gt_instances_ignore: Optional[InstanceData]) -> Tensor:
        """(N,) ``gt_inds`` of one image's anchors; anchors outside the image
        are ignored."""
        inside = self._inside_flags(anchors, featmap_sizes, img_meta)
        if not inside.any():
            raise ValueError('ATSSHead: no anchor lies inside the image (img_shape='
                             f"{img_meta['img_shape']}); check the image and anchor sizes, or "
                             'set train_cfg.allowed_border=-1.')
        num_per_level = [size[0] * size[1] * self.num_base_priors for size in featmap_sizes]
        num_level_inside = [int(flags.sum()) for flags in torch.split(inside, num_per_level)]
        if gt_instances_ignore is not None and len(gt_instances_ignore) == 0:
            gt_instances_ignore = None
        result = self.assigner.assign(InstanceData(priors=anchors[inside]), num_level_inside,
                                      gt_instances, gt_instances_ignore)
        gt_inds = torch.full_like(inside, IGNORED_GT_IND, dtype=torch.long)
        gt_inds[inside] = result.gt_inds
        return gt_inds
