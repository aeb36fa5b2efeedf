"""FoveaHead (Kong et al., "FoveaBox: Beyond Anchor-based Object Detector", 2019).

Each level answers for objects whose size sqrt(w * h) lies in its
``scale_ranges`` entry. A box's positives are the cells of its "fovea", the
central ``sigma`` part of the box scaled to the level's grid; they regress the
log of the distances from the cell's point to the box sides in units of the
level's ``base_edge_list`` entry (clamped to [1/16, 16]). With ``with_deform``
the class branch first aligns its features with a deformable conv whose offsets
come from the predicted box shape (:class:`FeatureAlign`).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from ..layers.deform_conv import DCN_TYPES, DeformConv2d
from ..utils import conv_tower, filter_scores_and_topk, logits_for_loss, multi_apply
from .anchor_free_head import AnchorFreeHead


class FeatureAlign(BaseModule):
    """Deformable 3x3 conv (DCNv1) whose offsets are a 1x1 conv of the
    predicted box shape (the exp of the box branch's output), then ReLU.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        kernel_size (int): Kernel of the deformable conv. Defaults to 3.
        deform_groups (int): Offset groups of the deformable conv. Defaults to 4.
        init_cfg (dict): Normal(0, 0.1) convs, the deformable one Normal(0, 0.01).
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_size: int = 3,
                 deform_groups: int = 4,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.1,
                     override=dict(type='Normal', name='conv_adaption', std=0.01))) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv_offset = nn.Conv2d(4, deform_groups * kernel_size * kernel_size * 2, 1,
                                     bias=False)
        self.conv_adaption = DeformConv2d(in_channels, out_channels, kernel_size=kernel_size,
                                          padding=(kernel_size - 1) // 2,
                                          deform_groups=deform_groups)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor, shape: Tensor) -> Tensor:
        """Args: x (B, C_in, H, W) features; shape (B, 4, H, W) box shape.

        Returns:
            Tensor: (B, C_out, H, W) aligned features.
        """
        return self.relu(self.conv_adaption(x, self.conv_offset(shape)))


@MODELS.register_module()
class FoveaHead(AnchorFreeHead):
    """Per-point classes and log box-side distances, FoveaBox's targets.

    State_dict keys match MMDetection's: ``reg_convs``, ``conv_reg``,
    ``cls_convs``, ``conv_cls`` and, with ``with_deform``,
    ``feature_adaption.conv_offset`` / ``feature_adaption.conv_adaption``.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        base_edge_list (list[int]): Per level, the unit of the regressed distances.
        scale_ranges (list[tuple]): Per level, the (low, high) range of
            sqrt(w * h) of the boxes it is trained on (ranges may overlap).
        sigma (float): Fraction of the box (around its centre) that is positive.
        with_deform (bool): Class branch = FeatureAlign, a 3x3 conv to
            4 * feat_channels and a 1x1 conv, instead of the tower.
        deform_groups (int): Offset groups of FeatureAlign. Defaults to 4.
        init_cfg (dict): See :class:`AnchorFreeHead`.
        **kwargs: The rest of :class:`AnchorFreeHead`'s arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 base_edge_list: Sequence[int] = (16, 32, 64, 128, 256),
                 scale_ranges: Sequence[tuple] = ((8, 32), (16, 64), (32, 128), (64, 256),
                                                  (128, 512)),
                 sigma: float = 0.4,
                 with_deform: bool = False,
                 deform_groups: int = 4,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        self.base_edge_list = base_edge_list
        self.scale_ranges = scale_ranges
        self.sigma = sigma
        self.with_deform = with_deform
        self.deform_groups = deform_groups
        super().__init__(num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg,
                         **kwargs)
        num_levels = self.prior_generator.num_levels
        for key, value in (('base_edge_list', base_edge_list), ('scale_ranges', scale_ranges)):
            if len(value) != num_levels:
                raise ValueError(f'FoveaHead: {key} has {len(value)} entries for {num_levels} '
                                 f'strides ({list(self.strides)}); give one per level')

    def _init_layers(self) -> None:
        # Box branch first, then the class branch, in MMDetection's key order.
        last_conv_cfg = dict(type=DCN_TYPES['DCNv2']) if self.dcn_on_last_conv else None
        tower = dict(num_convs=self.stacked_convs, conv_cfg=self.conv_cfg,
                     norm_cfg=self.norm_cfg, bias=self.conv_bias, last_conv_cfg=last_conv_cfg)
        self.reg_convs = conv_tower(self.in_channels, self.feat_channels, **tower)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)
        if not self.with_deform:
            self.cls_convs = conv_tower(self.in_channels, self.feat_channels, **tower)
            self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
            return
        wide = self.feat_channels * 4
        bias = self.norm_cfg is None
        self.cls_convs = nn.Sequential(
            ConvModule(self.feat_channels, wide, 3, stride=1, padding=1, conv_cfg=self.conv_cfg,
                       norm_cfg=self.norm_cfg, bias=bias),
            ConvModule(wide, wide, 1, stride=1, padding=0, conv_cfg=self.conv_cfg,
                       norm_cfg=self.norm_cfg, bias=bias))
        self.feature_adaption = FeatureAlign(self.feat_channels, self.feat_channels,
                                             kernel_size=3, deform_groups=self.deform_groups)
        self.conv_cls = nn.Conv2d(wide, self.cls_out_channels, 3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One level: (B, num_classes, H, W) logits and (B, 4, H, W) log distances."""
        bbox_pred = self.conv_reg(self.reg_convs(x))
        cls_feat = self.feature_adaption(x, bbox_pred.exp()) if self.with_deform else x
        return self.conv_cls(self.cls_convs(cls_feat)), bbox_pred

    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, Tensor]:
        """``loss_cls`` over every point, normalised by the number of
        positives plus the number of images; ``loss_bbox`` over the positives'
        log distances, normalised by the number of positives (zero without any).

        Returns:
            dict: ``loss_cls``, ``loss_bbox``, scalars.
        """
        if len(cls_scores) != len(bbox_preds):
            raise ValueError(f'FoveaHead.loss_by_feat: {len(cls_scores)} levels of cls_scores '
                             f'but {len(bbox_preds)} of bbox_preds')
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        priors = self.prior_generator.grid_priors(featmap_sizes, dtype=bbox_preds[0].dtype,
                                                  device=bbox_preds[0].device)
        num_imgs = cls_scores[0].size(0)
        # Level by level, each level image by image (MMDetection's row order).
        flat_cls = torch.cat([score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
                              for score in cls_scores])
        flat_bbox = torch.cat([pred.permute(0, 2, 3, 1).reshape(-1, 4) for pred in bbox_preds])
        labels, bbox_targets = self.get_targets(batch_gt_instances, featmap_sizes, priors)
        pos_inds = ((labels >= 0) & (labels < self.num_classes)).nonzero().view(-1)
        num_pos = len(pos_inds)
        loss_cls = self.loss_cls(logits_for_loss(self.loss_cls, flat_cls, labels), labels,
                                 avg_factor=num_pos + num_imgs)
        if num_pos > 0:
            pos_targets = bbox_targets[pos_inds]
            loss_bbox = self.loss_bbox(flat_bbox[pos_inds], pos_targets,
                                       pos_targets.new_ones(pos_targets.size()),
                                       avg_factor=num_pos)
        else:
            loss_bbox = torch.tensor(0, dtype=flat_bbox.dtype, device=flat_bbox.device)
        return dict(loss_cls=loss_cls, loss_bbox=loss_bbox)

    def get_targets(self, batch_gt_instances: List[InstanceData], featmap_sizes: List[tuple],
                    priors_list: List[Tensor]) -> Tuple[Tensor, Tensor]:
        """Labels (N,) (background = ``num_classes``) and log-distance targets
        (N, 4) of every point of the batch, level by level, each level image by
        image."""
        label_list, bbox_target_list = multi_apply(
            self._get_targets_single, batch_gt_instances, featmap_size_list=featmap_sizes,
            priors_list=priors_list)
        labels = torch.cat([level.flatten() for levels in zip(*label_list) for level in levels])
        bbox_targets = torch.cat([level.reshape(-1, 4) for levels in zip(*bbox_target_list)
                                  for level in levels])
        return labels, bbox_targets

    def _get_targets_single(self, gt_instances: InstanceData,
                            featmap_size_list: Optional[List[tuple]] = None,
                            priors_list: Optional[List[Tensor]] = None
                            ) -> Tuple[List[Tensor], List[Tensor]]:
        """One image: per level (H, W) labels and (H, W, 4) log distances.

        A level takes the boxes whose sqrt(area) lies in its scale range;
        they are painted largest first, so a smaller box wins the cells it
        shares with a larger one. Cells no box claims get the background label
        and log(1) = 0 targets.
        """
        gt_bboxes_raw, gt_labels_raw = gt_instances.bboxes, gt_instances.labels
        gt_areas = torch.sqrt((gt_bboxes_raw[:, 2] - gt_bboxes_raw[:, 0])
                              * (gt_bboxes_raw[:, 3] - gt_bboxes_raw[:, 1]))
        label_list, bbox_target_list = [], []
        for base_len, (lower, upper), stride, featmap_size, priors in zip(
                self.base_edge_list, self.scale_ranges, self.strides, featmap_size_list,
                priors_list):
            height, width = featmap_size
            priors = priors.view(height, width, 2)
            x, y = priors[..., 0], priors[..., 1]
            labels = gt_labels_raw.new_full(featmap_size, self.num_classes)
            bbox_targets = gt_bboxes_raw.new_ones(height, width, 4)
            hit = ((gt_areas >= lower) & (gt_areas <= upper)).nonzero().flatten()
            if len(hit):
                hit = hit[torch.sort(-gt_areas[hit])[1]]
                boxes = gt_bboxes_raw[hit, :] / stride
                half_w = 0.5 * (boxes[:, 2] - boxes[:, 0])
                half_h = 0.5 * (boxes[:, 3] - boxes[:, 1])
                # Fovea cells, inclusive: left, right, top, bottom.
                left = torch.ceil(boxes[:, 0] + (1 - self.sigma) * half_w - 0.5).long()
                right = torch.floor(boxes[:, 0] + (1 + self.sigma) * half_w - 0.5).long()
                top = torch.ceil(boxes[:, 1] + (1 - self.sigma) * half_h - 0.5).long()
                bottom = torch.floor(boxes[:, 1] + (1 + self.sigma) * half_h - 0.5).long()
                left, right = left.clamp(0, width - 1), right.clamp(0, width - 1)
                top, bottom = top.clamp(0, height - 1), bottom.clamp(0, height - 1)
                # Each cell takes the last box in painting order whose fovea covers it
                # (1-based; 0: none), all boxes at once rather than painted one by one.
                cols = torch.arange(width, device=left.device)
                rows = torch.arange(height, device=left.device)
                covers = (((rows >= top[:, None]) & (rows <= bottom[:, None]))[:, :, None]
                          & ((cols >= left[:, None]) & (cols <= right[:, None]))[:, None, :])
                order = torch.arange(1, len(hit) + 1, device=left.device)
                winner = (covers * order[:, None, None]).amax(dim=0)  # (H, W)
                claimed = winner > 0
                winner = (winner - 1).clamp(min=0)
                labels = torch.where(claimed, gt_labels_raw[hit][winner], labels)
                gt_box = gt_bboxes_raw[hit][winner]  # (H, W, 4)
                distances = torch.stack([x - gt_box[..., 0], y - gt_box[..., 1],
                                         gt_box[..., 2] - x, gt_box[..., 3] - y], -1) / base_len
                bbox_targets = torch.where(claimed[..., None], distances, bbox_targets)
                bbox_targets = bbox_targets.clamp(min=1. / 16, max=16.)
            label_list.append(labels)
            bbox_target_list.append(torch.log(bbox_targets))
        return label_list, bbox_target_list

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: Optional[List[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: dict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """One image: per level keep the ``nms_pre`` best (point, class) pairs
        above ``score_thr``, decode their boxes with the level's base edge
        (:meth:`_bbox_decode`), then :meth:`_bbox_post_process`."""
        img_shape = img_meta['img_shape']
        nms_pre = cfg.get('nms_pre', -1)
        mlvl_bboxes, mlvl_scores, mlvl_labels = [], [], []
        for cls_score, bbox_pred, base_len, priors in zip(cls_score_list, bbox_pred_list,
                                                          self.base_edge_list, mlvl_priors):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            scores, labels, _, kept = filter_scores_and_topk(
                scores, cfg['score_thr'], nms_pre, dict(bbox_pred=bbox_pred, priors=priors))
            mlvl_bboxes.append(self._bbox_decode(kept['priors'], kept['bbox_pred'], base_len,
                                                 img_shape))
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
        results = InstanceData(bboxes=torch.cat(mlvl_bboxes), scores=torch.cat(mlvl_scores),
                               labels=torch.cat(mlvl_labels))
        return self._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                       img_meta=img_meta)

    def _bbox_decode(self, priors: Tensor, bbox_pred: Tensor, base_len: int,
                     max_shape: Sequence[int]) -> Tensor:
        """(N, 4) x1, y1, x2, y2 from points (N, 2) and log distances (N, 4) in
        units of ``base_len``, clipped to [0, size - 1] of ``max_shape`` (h, w)."""
        distances = bbox_pred.exp() * base_len
        x, y = priors[:, 0], priors[:, 1]
        x1 = (x - distances[:, 0]).clamp(min=0, max=max_shape[1] - 1)
        y1 = (y - distances[:, 1]).clamp(min=0, max=max_shape[0] - 1)
        x2 = (x + distances[:, 2]).clamp(min=0, max=max_shape[1] - 1)
        y2 = (y + distances[:, 3]).clamp(min=0, max=max_shape[0] - 1)
        return torch.stack([x1, y1, x2, y2], -1)
