"""YOLOX's decoupled head (Ge et al., "YOLOX: Exceeding YOLO Series in 2021"),
with MMDetection's config keys and state_dict keys (``multi_level_cls_convs``,
``multi_level_reg_convs``, ``multi_level_conv_cls``, ``multi_level_conv_reg``,
``multi_level_conv_obj``).

One point per feature cell (``MlvlPointGenerator`` with offset 0); per level the
head has its own towers and predicts class logits, a box as (dx, dy, log w,
log h) in strides from the point, and an objectness logit. Training assigns
every point of every image at once with :class:`SimOTAAssigner`; the class
target of a positive is its matched IoU at its gt's class. Detections take the
best class per point, score it by class probability times objectness, and go
through the dense-head base's NMS and rescaling.
"""
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import bias_init_with_prob
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS, TASK_UTILS
from detlab.structures.bbox import bbox_xyxy_to_cxcywh
from detlab.utils import reduce_mean
from ..layers.csp_layer import CSP_NORM_CFG
from ..task_modules.assigners import NEGATIVE_GT_IND
from ..task_modules.prior_generators import MlvlPointGenerator
from ..utils import gathers_positives, levels_to_anchor_rows, pad_gt_instances
from .base_dense_head import BaseDenseHead

#: Prior probability behind the classifier's and objectness' initial biases.
PRIOR_PROB = 0.01
#: Added to the width and height ratios under the log of the L1 targets, as MMDetection.
L1_EPS = 1e-8


def yolox_bbox_decode(priors: Tensor, bbox_preds: Tensor) -> Tensor:
    """Boxes from YOLOX's outputs.

    Args:
        priors (Tensor): (N, 4) point x, y and stride_w, stride_h.
        bbox_preds (Tensor): (..., N, 4) centre offset (dx, dy) and log size
            (log w, log h), in strides.

    Returns:
        Tensor: (..., N, 4) x1, y1, x2, y2 in pixels.
    """
    xys = (bbox_preds[..., :2] * priors[:, 2:]) + priors[:, :2]
    whs = bbox_preds[..., 2:].exp() * priors[:, 2:]
    return torch.stack([xys[..., 0] - whs[..., 0] / 2, xys[..., 1] - whs[..., 1] / 2,
                        xys[..., 0] + whs[..., 0] / 2, xys[..., 1] + whs[..., 1] / 2], -1)


@dataclass
class YOLOXTargets:
    """Targets of every point of every image, flattened to B * P rows.

    The class, box and L1 targets have N rows: N_pos, the positives in row
    order, when they are gathered; else B * P, one per point, zero off the
    positives (see :meth:`YOLOXHead.get_targets`).

    Attributes:
        pos_mask (Tensor): (B * P,) bool, the positives.
        cls_targets (Tensor): (N, C) matched IoU at the gt's class.
        obj_targets (Tensor): (B * P, 1) 1 for positives, 0 elsewhere.
        bbox_targets (Tensor): (N, 4) the matched gt boxes.
        l1_targets (Tensor): (N, 4) the gt boxes in the head's encoding
            (only with ``use_l1``; zeros otherwise).
        num_pos (Tensor): Scalar float, positives of the batch.
    """
    pos_mask: Tensor
    cls_targets: Tensor
    obj_targets: Tensor
    bbox_targets: Tensor
    l1_targets: Tensor
    num_pos: Tensor


@MODELS.register_module()
class YOLOXHead(BaseDenseHead):
    """YOLOX's head.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        feat_channels (int): Channels of the tower convs.
        stacked_convs (int): Convs per tower.
        strides (Sequence[int]): Stride of each level.
        use_depthwise (bool): Depthwise-separable tower convs.
        dcn_on_last_conv (bool): A DCNv2 last tower conv.
        conv_bias (bool | str): Bias of the tower convs; ``'auto'``: only
            without a norm.
        conv_cfg, norm_cfg, act_cfg (dict): Tower layer configs.
        loss_cls, loss_bbox, loss_obj, loss_l1 (dict): Loss configs (sums,
            divided by the number of positives).
        train_cfg (dict, optional): ``assigner`` (``SimOTAAssigner``).
        test_cfg (dict, optional): ``score_thr``, ``nms``; ``max_per_img``
            (none: every box kept by NMS, as MMDetection).
        init_cfg (dict): Kaiming-uniform convs, as MMDetection; then the class
            and objectness biases from ``PRIOR_PROB``.

    ``use_l1`` (False at build) adds the L1 loss on the raw box outputs;
    ``YOLOXModeSwitchHook`` turns it on for the last epochs.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 2,
                 strides: Sequence[int] = (8, 16, 32),
                 use_depthwise: bool = False,
                 dcn_on_last_conv: bool = False,
                 conv_bias: Union[bool, str] = 'auto',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = CSP_NORM_CFG,
                 act_cfg: dict = dict(type='Swish'),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       reduction='sum', loss_weight=1.0),
                 loss_bbox: dict = dict(type='IoULoss', mode='square', eps=1e-16,
                                        reduction='sum', loss_weight=5.0),
                 loss_obj: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       reduction='sum', loss_weight=1.0),
                 loss_l1: dict = dict(type='L1Loss', reduction='sum', loss_weight=1.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', a=math.sqrt(5), distribution='uniform',
                     mode='fan_in', nonlinearity='leaky_relu')) -> None:
        super().__init__(init_cfg=init_cfg)
        if not (conv_bias == 'auto' or isinstance(conv_bias, bool)):
            raise ValueError(f"YOLOXHead: conv_bias must be 'auto' or a bool, got {conv_bias!r}")
        self.num_classes = num_classes
        self.cls_out_channels = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = strides
        self.use_depthwise = use_depthwise
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.use_sigmoid_cls = True
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.loss_obj = MODELS.build(loss_obj)
        self.use_l1 = False
        self.loss_l1 = MODELS.build(loss_l1)
        self.prior_generator = MlvlPointGenerator(strides, offset=0)
        self.test_cfg = test_cfg
        self.train_cfg = train_cfg
        if self.train_cfg:
            self.assigner = TASK_UTILS.build(self.train_cfg['assigner'])
        self._init_layers()

    def _init_layers(self) -> None:
        self.multi_level_cls_convs = nn.ModuleList()
        self.multi_level_reg_convs = nn.ModuleList()
        self.multi_level_conv_cls = nn.ModuleList()
        self.multi_level_conv_reg = nn.ModuleList()
        self.multi_level_conv_obj = nn.ModuleList()
        for _ in self.strides:
            self.multi_level_cls_convs.append(self._build_stacked_convs())
            self.multi_level_reg_convs.append(self._build_stacked_convs())
            self.multi_level_conv_cls.append(nn.Conv2d(self.feat_channels,
                                                       self.cls_out_channels, 1))
            self.multi_level_conv_reg.append(nn.Conv2d(self.feat_channels, 4, 1))
            self.multi_level_conv_obj.append(nn.Conv2d(self.feat_channels, 1, 1))

    def _build_stacked_convs(self) -> nn.Sequential:
        """``stacked_convs`` 3x3 convs with norm and ``act_cfg`` (the last a
        DCNv2 with ``dcn_on_last_conv``)."""
        conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        return nn.Sequential(*[
            conv(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                 stride=1, padding=1,
                 conv_cfg=(dict(type='DCNv2') if self.dcn_on_last_conv
                           and i == self.stacked_convs - 1 else self.conv_cfg),
                 norm_cfg=self.norm_cfg, act_cfg=self.act_cfg, bias=self.conv_bias)
            for i in range(self.stacked_convs)])

    def init_weights(self) -> None:
        """``init_cfg`` (Kaiming convs), then the class and objectness biases
        at ``PRIOR_PROB``, as MMDetection."""
        super().init_weights()
        bias_init = bias_init_with_prob(PRIOR_PROB)
        for conv_cls, conv_obj in zip(self.multi_level_conv_cls, self.multi_level_conv_obj):
            conv_cls.bias.data.fill_(bias_init)
            conv_obj.bias.data.fill_(bias_init)

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Every level.

        Returns:
            tuple: ``cls_scores`` (B, C, H, W) logits, ``bbox_preds`` (B, 4, H,
            W) offsets and log sizes in strides, ``objectnesses`` (B, 1, H, W)
            logits, one entry per level each.
        """
        cls_scores, bbox_preds, objectnesses = [], [], []
        for feat, cls_convs, reg_convs, conv_cls, conv_reg, conv_obj in zip(
                x, self.multi_level_cls_convs, self.multi_level_reg_convs,
                self.multi_level_conv_cls, self.multi_level_conv_reg,
                self.multi_level_conv_obj):
            reg_feat = reg_convs(feat)
            cls_scores.append(conv_cls(cls_convs(feat)))
            bbox_preds.append(conv_reg(reg_feat))
            objectnesses.append(conv_obj(reg_feat))
        return cls_scores, bbox_preds, objectnesses

    # ---- inference ----------------------------------------------------------
    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: Optional[List[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: dict,
                                rescale: bool = False,
                                with_nms: bool = True) -> InstanceData:
        """One image: per level (C, H, W) class logits, (4, H, W) box outputs
        and (1, H, W) objectness logits (``score_factor_list``) with the
        level's points (H*W, 2). Each point keeps its best class, scored by
        class probability times objectness; points scoring at least
        ``score_thr`` go to :meth:`_bbox_post_process`."""
        if score_factor_list is None:
            raise ValueError('YOLOXHead.predict_by_feat needs the objectness logits as '
                             'score_factors (the third output of forward)')
        bboxes, scores, labels = [], [], []
        for cls_score, bbox_pred, objectness, points, (stride_w, stride_h) in zip(
                cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors,
                self.prior_generator.strides):
            priors = torch.cat([points, points.new_tensor([stride_w, stride_h]).expand_as(points)],
                               dim=1)
            level_scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).sigmoid()
            level_obj = objectness.permute(1, 2, 0).reshape(-1).sigmoid()
            max_scores, level_labels = torch.max(level_scores, 1)
            keep = level_obj * max_scores >= cfg['score_thr']
            level_bboxes = yolox_bbox_decode(priors, bbox_pred.permute(1, 2, 0).reshape(-1, 4))
            bboxes.append(level_bboxes[keep])
            scores.append(max_scores[keep] * level_obj[keep])
            labels.append(level_labels[keep])
        results = InstanceData(bboxes=torch.cat(bboxes), scores=torch.cat(scores),
                               labels=torch.cat(labels))
        return self._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                       img_meta=img_meta)

    # ---- training -----------------------------------------------------------
    def loss_by_feat(self,
                     cls_scores: Sequence[Tensor],
                     bbox_preds: Sequence[Tensor],
                     objectnesses: Sequence[Tensor],
                     batch_gt_instances: Sequence[InstanceData],
                     batch_img_metas: Sequence[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None) -> dict:
        """Losses of a batch, each a sum divided by the number of positives
        (averaged over processes, at least 1): ``loss_cls`` (BCE of the
        positives' class logits against their IoU-weighted one-hot labels),
        ``loss_bbox`` (IoU loss of the positives' boxes), ``loss_obj`` (BCE of
        every point's objectness) and, with ``use_l1``, ``loss_l1``.

        The losses over the positives gather them on the CPU, MMDetection's
        numbers bit for bit; elsewhere (see :func:`gathers_positives`) they run
        over every point with zero weight off the positives
        (:meth:`_dense_losses`), unless a loss reduces otherwise than by
        ``'sum'``, which only the gathered positives give."""
        featmap_sizes = [score.shape[2:] for score in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device,
            with_stride=True))
        flat_cls = levels_to_anchor_rows(cls_scores, self.cls_out_channels)  # (B, P, C)
        flat_bbox = levels_to_anchor_rows(bbox_preds, 4)
        flat_obj = levels_to_anchor_rows(objectnesses, 1)[..., 0]  # (B, P)
        flat_bboxes = yolox_bbox_decode(priors, flat_bbox)
        gather = gathers_positives(flat_cls) or not self._sums_over_positives()
        targets = self.get_targets(priors, flat_cls.detach(), flat_bboxes.detach(),
                                   flat_obj.detach(), batch_gt_instances, gather=gather)
        num_total_samples = reduce_mean(targets.num_pos).clamp(min=1.0)
        if not gather:
            return self._dense_losses(flat_cls.reshape(-1, self.num_classes),
                                      flat_bboxes.reshape(-1, 4), flat_obj.reshape(-1, 1),
                                      flat_bbox.reshape(-1, 4), targets, num_total_samples)
        pos = targets.pos_mask
        losses = dict(
            loss_cls=self.loss_cls(flat_cls.reshape(-1, self.num_classes)[pos],
                                   targets.cls_targets) / num_total_samples,
            loss_bbox=self.loss_bbox(flat_bboxes.reshape(-1, 4)[pos],
                                     targets.bbox_targets) / num_total_samples,
            loss_obj=self.loss_obj(flat_obj.reshape(-1, 1),
                                   targets.obj_targets) / num_total_samples)
        if self.use_l1:
            losses['loss_l1'] = self.loss_l1(flat_bbox.reshape(-1, 4)[pos],
                                             targets.l1_targets) / num_total_samples
        return losses

    def _sums_over_positives(self) -> bool:
        """Whether the losses over the positives reduce by ``'sum'`` (all of
        MMDetection's YOLOX configs), so that a sum over every point with zero
        weight off the positives equals them."""
        losses = (self.loss_cls, self.loss_bbox) + ((self.loss_l1, ) if self.use_l1 else ())
        return all(getattr(loss, 'reduction', None) == 'sum' for loss in losses)

    def _dense_losses(self, cls_preds: Tensor, decoded_bboxes: Tensor, objectness: Tensor,
                      bbox_preds: Tensor, targets: YOLOXTargets, num_total_samples: Tensor
                      ) -> dict:
        """:meth:`loss_by_feat`'s losses over every point, with zero weight
        off the positives, without gathering them (no value read back, no
        output whose size depends on the values). Off the positives the
        predicted boxes are zero boxes, as their targets, so that the IoU
        loss stays finite whatever the outputs there.

        Args:
            cls_preds (Tensor): (B * P, C) class logits.
            decoded_bboxes (Tensor): (B * P, 4) predicted boxes.
            objectness (Tensor): (B * P, 1) objectness logits.
            bbox_preds (Tensor): (B * P, 4) raw box outputs (the L1 loss's).
            targets (YOLOXTargets): :meth:`get_targets` with ``gather=False``.
            num_total_samples (Tensor): Divisor of every loss.
        """
        pos = targets.pos_mask
        pos_weight = pos.to(cls_preds.dtype)
        decoded_bboxes = torch.where(pos[:, None], decoded_bboxes, 0.)
        losses = dict(
            loss_cls=self.loss_cls(cls_preds, targets.cls_targets,
                                   pos_weight[:, None]) / num_total_samples,
            loss_bbox=self.loss_bbox(decoded_bboxes, targets.bbox_targets,
                                     pos_weight) / num_total_samples,
            loss_obj=self.loss_obj(objectness, targets.obj_targets) / num_total_samples)
        if self.use_l1:
            losses['loss_l1'] = self.loss_l1(bbox_preds, targets.l1_targets,
                                             pos_weight) / num_total_samples
        return losses

    @torch.no_grad()
    def get_targets(self, priors: Tensor, cls_preds: Tensor, decoded_bboxes: Tensor,
                    objectness: Tensor, batch_gt_instances: Sequence[InstanceData],
                    gather: bool = True) -> YOLOXTargets:
        """Assign every point of every image at once.

        Args:
            priors (Tensor): (P, 4) x, y, stride_w, stride_h of all levels.
            cls_preds (Tensor): (B, P, C) class logits.
            decoded_bboxes (Tensor): (B, P, 4) predicted boxes.
            objectness (Tensor): (B, P) objectness logits.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            gather (bool): Class, box and L1 targets of the positives only,
                gathered with boolean masks (their count is read back); else
                of every point, zero off the positives (class targets by
                comparing labels with every class, no value read back).

        Returns:
            YOLOXTargets: the targets, rows in (image, point) order.
        """
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances, priors.device)
        # The assigner sees each cell's centre.
        offset_priors = torch.cat([priors[:, :2] + priors[:, 2:] * 0.5, priors[:, 2:]], dim=-1)
        scores = (cls_preds.sigmoid() * objectness[..., None].sigmoid()).sqrt()
        prior_valid = decoded_bboxes.new_ones(decoded_bboxes.shape[:2], dtype=torch.bool)
        gt_inds, max_overlaps, labels = self.assigner.assign_batch(
            offset_priors, decoded_bboxes, scores, prior_valid, gt_bboxes, gt_labels, gt_valid)
        pos = gt_inds > NEGATIVE_GT_IND  # (B, P)
        matched = (gt_inds - 1).clamp(min=0)
        matched_bboxes = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))
        point_priors = priors[None].expand(len(pos), -1, -1)
        if gather:
            bbox_targets = matched_bboxes[pos]
            cls_targets = F.one_hot(labels[pos], self.num_classes) * max_overlaps[pos][:, None]
            point_priors = point_priors[pos]
        else:
            # max_overlaps is -inf off the positives: selected, not multiplied.
            classes = torch.arange(self.num_classes, device=labels.device)
            is_target = (labels[..., None] == classes) & pos[..., None]
            cls_targets = torch.where(is_target, max_overlaps[..., None], 0.).reshape(
                -1, self.num_classes)
            bbox_targets = torch.where(pos[..., None], matched_bboxes, 0.).reshape(-1, 4)
            point_priors = point_priors.reshape(-1, 4)
        l1_targets = bbox_targets.new_zeros(bbox_targets.shape)
        if self.use_l1:
            l1_targets = self._get_l1_target(bbox_targets, point_priors)
            if not gather:
                l1_targets = torch.where(pos.reshape(-1, 1), l1_targets, 0.)
        return YOLOXTargets(pos_mask=pos.reshape(-1), cls_targets=cls_targets,
                            obj_targets=pos.reshape(-1, 1).to(objectness.dtype),
                            bbox_targets=bbox_targets, l1_targets=l1_targets,
                            num_pos=pos.sum().float())

    @staticmethod
    def _get_l1_target(gt_bboxes: Tensor, priors: Tensor, eps: float = L1_EPS) -> Tensor:
        """(N, 4) gt boxes in the head's encoding relative to (N, 4) priors
        (x, y, stride_w, stride_h): centre offset and log size, in strides."""
        gt_cxcywh = bbox_xyxy_to_cxcywh(gt_bboxes)
        return torch.cat([(gt_cxcywh[:, :2] - priors[:, :2]) / priors[:, 2:],
                          torch.log(gt_cxcywh[:, 2:] / priors[:, 2:] + eps)], dim=1)
