"""FCOSHead (Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", 2019)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import Scale
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.utils import reduce_mean
from ..task_modules.assigners import PointTargets, fcos_assign
from ..utils import (gathers_positives, levels_to_anchor_rows, logits_for_loss, multi_apply,
                     pad_gt_instances)
from .anchor_free_head import AnchorFreeHead

INF = 1e8


def centerness_from_distances(distances: Tensor) -> Tensor:
    """FCOS centerness: sqrt(min(l, r) / max(l, r) * min(t, b) / max(t, b)).

    Args:
        distances (Tensor): (N, 4) left, top, right, bottom; all positive.

    Returns:
        Tensor: (N,) in (0, 1].
    """
    left_right, top_bottom = distances[:, [0, 2]], distances[:, [1, 3]]
    return torch.sqrt(left_right.min(dim=-1).values / left_right.max(dim=-1).values
                      * (top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values))


@MODELS.register_module()
class FCOSHead(AnchorFreeHead):
    """Per-point classes, distances to the box sides and centerness.

    State_dict keys match MMDetection's: the towers, ``conv_cls``,
    ``conv_reg``, ``conv_centerness`` and one learnable ``scales.{i}.scale``
    per level. Targets come from :func:`fcos_assign`.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        regress_ranges (tuple[tuple[float, float]]): Per level, the range of
            the largest point-to-side distance that level regresses.
        center_sampling (bool): Only points near a box's centre are positive.
        center_sample_radius (float): Radius of that centre region, in strides.
        norm_on_bbox (bool): Regress distances in strides of the level (ReLU
            instead of exp on the output).
        centerness_on_reg (bool): Centerness from the box tower (else the
            class tower).
        loss_cls, loss_bbox, loss_centerness (dict): Loss configs.
        norm_cfg (dict): Tower norm layer. Defaults to GN with 32 groups.
        cls_predictor_cfg (dict, optional): MMDetection's ``NormedConv2d``
            classifier; not provided by detlab, so must be None.
        init_cfg (dict): See :class:`AnchorFreeHead`.
        **kwargs: The rest of :class:`AnchorFreeHead`'s arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 regress_ranges: Sequence[Tuple[float, float]] = (
                     (-1, 64), (64, 128), (128, 256), (256, 512), (512, INF)),
                 center_sampling: bool = False,
                 center_sample_radius: float = 1.5,
                 norm_on_bbox: bool = False,
                 centerness_on_reg: bool = False,
                 loss_cls: dict = dict(
                     type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_bbox: dict = dict(type='IoULoss', loss_weight=1.0),
                 loss_centerness: dict = dict(
                     type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 cls_predictor_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        if cls_predictor_cfg is not None:
            raise ValueError(f'FCOSHead: cls_predictor_cfg={cls_predictor_cfg} asks for '
                             "MMDetection's NormedConv2d classifier, which detlab does not "
                             'provide; leave cls_predictor_cfg out.')
        self.regress_ranges = regress_ranges
        self.center_sampling = center_sampling
        self.center_sample_radius = center_sample_radius
        self.norm_on_bbox = norm_on_bbox
        self.centerness_on_reg = centerness_on_reg
        self.cls_predictor_cfg = cls_predictor_cfg
        super().__init__(num_classes, in_channels, loss_cls=loss_cls, loss_bbox=loss_bbox,
                         norm_cfg=norm_cfg, init_cfg=init_cfg, **kwargs)
        if len(regress_ranges) != self.prior_generator.num_levels:
            raise ValueError(f'FCOSHead: {len(regress_ranges)} regress_ranges for '
                             f'{self.prior_generator.num_levels} strides ({list(self.strides)})')
        self.loss_centerness = MODELS.build(loss_centerness)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.conv_centerness = nn.Conv2d(self.feat_channels, 1, 3, padding=1)
        self.scales = nn.ModuleList([Scale(1.0) for _ in self.strides])

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Every level.

        Returns:
            tuple: ``cls_scores`` (B, C, H, W), ``bbox_preds`` (B, 4, H, W)
            distances (in pixels at inference; in strides during training with
            ``norm_on_bbox``) and ``centernesses`` (B, 1, H, W) logits, one
            entry per level each.
        """
        return multi_apply(self.forward_single, feats, self.scales, self.strides)

    def forward_single(self, x: Tensor, scale: Scale, stride: int) -> Tuple[Tensor, Tensor, Tensor]:
        cls_feat, reg_feat = self.cls_convs(x), self.reg_convs(x)
        centerness = self.conv_centerness(reg_feat if self.centerness_on_reg else cls_feat)
        # fp32 so that exp() cannot overflow under mixed precision.
        bbox_pred = scale(self.conv_reg(reg_feat)).float()
        if self.norm_on_bbox:
            bbox_pred = bbox_pred.clamp(min=0)
            if not self.training:
                bbox_pred = bbox_pred * stride
        else:
            bbox_pred = bbox_pred.exp()
        return self.conv_cls(cls_feat), bbox_pred, centerness

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     centernesses: List[Tensor],
                     batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, Tensor]:
        """Losses of a batch, all levels at once.

        ``loss_cls`` over every point, normalised by the number of positives;
        ``loss_bbox`` over positives on decoded boxes, weighted by the
        centerness target and normalised by its sum; ``loss_centerness`` over
        positives, normalised by the number of positives. Both normalisers are
        averaged over processes.

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, ``loss_centerness``, scalars.
        """
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        points = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        targets = self.get_targets(points, batch_gt_instances)
        bbox_flat = levels_to_anchor_rows(bbox_preds, 4)
        centerness_flat = levels_to_anchor_rows(centernesses, 1).float()

        labels = targets.labels.reshape(-1)
        pos_mask = (labels >= 0) & (labels < self.num_classes)
        num_pos = reduce_mean(pos_mask.sum().float()).clamp(min=1.0)
        cls_flat = levels_to_anchor_rows(cls_scores, self.cls_out_channels)
        loss_cls = self.loss_cls(
            logits_for_loss(self.loss_cls, cls_flat.reshape(-1, self.cls_out_channels), labels),
            labels, avg_factor=num_pos)

        all_points = torch.cat(points).repeat(len(batch_gt_instances), 1)
        if not gathers_positives(labels):
            loss_bbox, loss_centerness = self._dense_box_losses(
                all_points, pos_mask, bbox_flat.reshape(-1, 4), centerness_flat.reshape(-1),
                targets.bbox_targets.reshape(-1, 4), num_pos)
            return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)
        pos_index = pos_mask.nonzero(as_tuple=True)[0]
        pos_bbox_preds = bbox_flat.reshape(-1, 4)[pos_index]
        pos_centerness = centerness_flat.reshape(-1)[pos_index]
        pos_bbox_targets = targets.bbox_targets.reshape(-1, 4)[pos_index]
        pos_centerness_targets = centerness_from_distances(pos_bbox_targets)
        centerness_denorm = reduce_mean(pos_centerness_targets.sum().detach()).clamp(min=1e-6)
        if pos_index.numel() > 0:
            pos_points = all_points[pos_index]
            loss_bbox = self.loss_bbox(self.bbox_coder.decode(pos_points, pos_bbox_preds),
                                       self.bbox_coder.decode(pos_points, pos_bbox_targets),
                                       weight=pos_centerness_targets,
                                       avg_factor=centerness_denorm)
            loss_centerness = self.loss_centerness(pos_centerness, pos_centerness_targets,
                                                   avg_factor=num_pos)
        else:
            loss_bbox = pos_bbox_preds.sum()
            loss_centerness = pos_centerness.sum()
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox, loss_centerness=loss_centerness)

    def _dense_box_losses(self, points: Tensor, pos_mask: Tensor, bbox_preds: Tensor,
                          centernesses: Tensor, bbox_targets: Tensor, num_pos: Tensor
                          ) -> Tuple[Tensor, Tensor]:
        """``loss_bbox`` and ``loss_centerness`` over every point, with zero
        weight off the positives: :meth:`loss_by_feat`'s values without
        gathering the positives (see :func:`gathers_positives`). Off the
        positives, prediction and target are both the distances (1, 1, 1, 1),
        so that their boxes and centerness are finite.

        Args:
            points (Tensor): (M, 2) points of every image.
            pos_mask (Tensor): (M,) bool positives.
            bbox_preds, bbox_targets (Tensor): (M, 4) distances.
            centernesses (Tensor): (M,) logits.
            num_pos (Tensor): Normaliser of the centerness loss.
        """
        bbox_preds = torch.where(pos_mask[:, None], bbox_preds, 1.0)
        bbox_targets = torch.where(pos_mask[:, None], bbox_targets, 1.0)
        centerness_targets = centerness_from_distances(bbox_targets)
        bbox_weights = torch.where(pos_mask, centerness_targets, 0.0)
        centerness_denorm = reduce_mean(bbox_weights.sum().detach()).clamp(min=1e-6)
        loss_bbox = self.loss_bbox(self.bbox_coder.decode(points, bbox_preds),
                                   self.bbox_coder.decode(points, bbox_targets),
                                   weight=bbox_weights, avg_factor=centerness_denorm)
        loss_centerness = self.loss_centerness(centernesses, centerness_targets,
                                               weight=pos_mask.float(), avg_factor=num_pos)
        return loss_bbox, loss_centerness

    @torch.no_grad()
    def get_targets(self, points: List[Tensor],
                    batch_gt_instances: List[InstanceData]) -> PointTargets:
        """Labels and distance targets of every point of every image.

        Args:
            points (list[Tensor]): (P_l, 2) points of each level.
            batch_gt_instances (list[InstanceData]): ``bboxes`` and ``labels``.

        Returns:
            PointTargets: labels (B, P) and bbox_targets (B, P, 4), P = sum of
            P_l in level order; distances in strides with ``norm_on_bbox``.
        """
        num_per_level = [len(level_points) for level_points in points]
        point_strides = torch.cat([
            level_points.new_full((num,), self._level_stride(level))
            for level, (level_points, num) in enumerate(zip(points, num_per_level))])
        regress_ranges = torch.cat([
            level_points.new_tensor(self.regress_ranges[level])[None].expand(num, 2)
            for level, (level_points, num) in enumerate(zip(points, num_per_level))])
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances)
        targets = fcos_assign(torch.cat(points), point_strides, regress_ranges, gt_bboxes,
                              gt_labels, gt_valid, self.num_classes,
                              center_sampling=self.center_sampling,
                              center_sample_radius=self.center_sample_radius)
        if self.norm_on_bbox:
            targets.bbox_targets = targets.bbox_targets / point_strides[None, :, None]
        return targets

    def _level_stride(self, level: int) -> float:
        """The stride of a level as one number (the width stride of a (w, h) pair)."""
        return float(self.prior_generator.strides[level][0])

    def centerness_target(self, pos_bbox_targets: Tensor) -> Tensor:
        """Centerness of (N, 4) distance targets; see :func:`centerness_from_distances`."""
        return centerness_from_distances(pos_bbox_targets)
