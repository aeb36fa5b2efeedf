"""RTMDet's heads (Lyu et al., "RTMDet: An Empirical Study of Designing
Real-Time Object Detectors", 2022), with MMDetection's config keys and
state_dict keys (``cls_convs``, ``reg_convs``, ``rtm_cls``, ``rtm_reg``,
``rtm_obj``, ``scales``).

One point per feature cell (``MlvlPointGenerator`` with offset 0); the head
predicts class logits and the four distances, in pixels, from the point to the
box sides. Training assigns every point of every image at once with
:class:`DynamicSoftLabelAssigner` and scores classes with
``QualityFocalLoss`` against the matched IoU; the box loss (GIoU) is weighted
by that IoU. Detections come from the dense-head base's post-processing
(:meth:`BaseDenseHead.predict_by_feat`).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule, Scale, is_norm
from mmengine.model import bias_init_with_prob, constant_init, normal_init
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.bbox import distance2bbox
from detlab.utils import reduce_mean
from ..layers.transformer import inverse_sigmoid
from ..task_modules.assigners import NEGATIVE_GT_IND
from ..utils import dense_box_loss, gathers_positives, levels_to_anchor_rows, pad_gt_instances
from .anchor_head import AnchorHead

#: Prior probability behind the classifier's (and objectness') initial bias.
PRIOR_PROB = 0.01


def sigmoid_geometric_mean(x: Tensor, y: Tensor) -> Tensor:
    """``sqrt(sigmoid(x) * sigmoid(y))``: class probability times objectness."""
    return (x.sigmoid() * y.sigmoid()).sqrt()


@dataclass
class RTMDetTargets:
    """Targets of every point of every image.

    Attributes:
        labels (Tensor): (B, P) matched gt class; ``num_classes`` elsewhere.
        label_weights (Tensor): (B, P) 1 for points that count in the class
            loss (``pos_weight`` for positives when > 0); 0 for points left
            out of the assignment (outside the padded image).
        bbox_targets (Tensor): (B, P, 4) matched gt box (zeros elsewhere).
        assign_metrics (Tensor): (B, P) IoU of the positive's prediction with
            its gt (the QFL target and the box-loss weight); 0 elsewhere.
        gt_inds (Tensor): (B, P) index of the matched gt in its image for
            positives, -1 elsewhere.
    """
    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    assign_metrics: Tensor
    gt_inds: Tensor


@MODELS.register_module()
class RTMDetHead(AnchorHead):
    """RTMDet's head with towers shared by the levels.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        with_objectness (bool): An objectness branch (``rtm_obj``) whose
            sigmoid is combined with the class sigmoid by geometric mean.
        act_cfg (dict): Tower activation.
        pred_kernel_size (int): Kernel of the predictor convs.
        stacked_convs (int): Convs per tower.
        conv_cfg (dict, optional): Tower conv config.
        norm_cfg (dict, optional): Tower norm config.
        reg_decoded_bbox (bool): Must stay True (the box loss compares boxes).
        loss_centerness (dict, optional): Accepted for MMDetection's config
            keys (its base class, ATSSHead, takes it); RTMDet has no centerness.
        init_cfg (dict, optional): Unused: :meth:`init_weights` sets
            Normal(0, 0.01) convs, norms to 1 and the classifier's bias from
            ``PRIOR_PROB``, as MMDetection.
        **kwargs: :class:`AnchorHead`'s arguments (``feat_channels``,
            ``anchor_generator``, ``bbox_coder``, ``loss_cls``, ``loss_bbox``,
            ``train_cfg``, ``test_cfg``).
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 with_objectness: bool = True,
                 act_cfg: dict = dict(type='ReLU'),
                 pred_kernel_size: int = 3,
                 stacked_convs: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = dict(type='GN', num_groups=32, requires_grad=True),
                 reg_decoded_bbox: bool = True,
                 loss_centerness: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        name = type(self).__name__
        if not reg_decoded_bbox:
            raise ValueError(f'{name}: reg_decoded_bbox=False is not supported; the box loss '
                             'compares decoded boxes (set it to True).')
        self.with_objectness = with_objectness
        self.act_cfg = act_cfg
        self.pred_kernel_size = pred_kernel_size
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        kwargs.setdefault('anchor_generator',
                          dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]))
        kwargs.setdefault('bbox_coder', dict(type='DistancePointBBoxCoder'))
        super().__init__(num_classes, in_channels, reg_decoded_bbox=reg_decoded_bbox,
                         init_cfg=init_cfg, **kwargs)
        self.use_sigmoid_cls = True
        strides = self.prior_generator.strides
        if any(stride_w != stride_h for stride_w, stride_h in strides):
            raise ValueError(f'{name}: the point generator strides must be square, got '
                             f'{strides}')

    def _init_layers(self) -> None:
        self.cls_convs = self._tower()
        self.reg_convs = self._tower()
        self.rtm_cls, self.rtm_reg, rtm_obj = self._predictors()
        if self.with_objectness:
            self.rtm_obj = rtm_obj
        self.scales = nn.ModuleList(Scale(1.0) for _ in self.prior_generator.strides)

    def _tower(self, conv: type = ConvModule) -> nn.ModuleList:
        """``stacked_convs`` 3x3 convs with norm and ``act_cfg``."""
        return nn.ModuleList(
            conv(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3,
                 stride=1, padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                 act_cfg=self.act_cfg)
            for i in range(self.stacked_convs))

    def _predictors(self) -> Tuple[nn.Conv2d, nn.Conv2d, nn.Conv2d]:
        """The class, distance and objectness convs of one level."""
        padding = self.pred_kernel_size // 2
        return tuple(
            nn.Conv2d(self.feat_channels, channels, self.pred_kernel_size, padding=padding)
            for channels in (self.num_base_priors * self.cls_out_channels,
                             self.num_base_priors * 4, 1))

    def _predictor_layers(self) -> List[Tuple[nn.Module, nn.Module, Optional[nn.Module]]]:
        """(class, distance, objectness) predictors whose init differs from the towers'."""
        return [(self.rtm_cls, self.rtm_reg, getattr(self, 'rtm_obj', None))]

    def init_weights(self) -> None:
        """Normal(0, 0.01) convs with zero bias, norms at 1, the classifier's
        and objectness' biases at ``PRIOR_PROB``, as MMDetection."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                normal_init(module, mean=0, std=0.01)
            if is_norm(module):
                constant_init(module, 1)
        bias_cls = bias_init_with_prob(PRIOR_PROB)
        for rtm_cls, rtm_reg, rtm_obj in self._predictor_layers():
            normal_init(rtm_cls, std=0.01, bias=bias_cls)
            normal_init(rtm_reg, std=0.01)
            if rtm_obj is not None:
                normal_init(rtm_obj, std=0.01, bias=bias_cls)

    def _classify(self, cls_logits: Tensor, reg_feat: Tensor, rtm_obj: Optional[nn.Module]
                  ) -> Tensor:
        """Class logits, combined with objectness when the head has it."""
        if rtm_obj is None:
            return cls_logits
        return inverse_sigmoid(sigmoid_geometric_mean(cls_logits, rtm_obj(reg_feat)))

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Every level.

        Returns:
            tuple: ``cls_scores`` (B, C, H, W) logits and ``bbox_preds``
            (B, 4, H, W) distances left, top, right, bottom in pixels, one
            entry per level each.
        """
        cls_scores, bbox_preds = [], []
        for x, scale, (stride, _) in zip(feats, self.scales, self.prior_generator.strides):
            cls_feat, reg_feat = x, x
            for layer in self.cls_convs:
                cls_feat = layer(cls_feat)
            for layer in self.reg_convs:
                reg_feat = layer(reg_feat)
            cls_scores.append(self._classify(self.rtm_cls(cls_feat), reg_feat,
                                             getattr(self, 'rtm_obj', None)))
            bbox_preds.append(scale(self.rtm_reg(reg_feat).exp()).float() * stride)
        return cls_scores, bbox_preds

    # ---- training -------------------------------------------------------
    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, List[Tensor]]:
        """Losses of a batch, one entry per level as in MMDetection.

        ``loss_cls``: QFL of every counted point against (label, matched IoU),
        summed and divided by the sum of matched IoUs over the batch (averaged
        over processes, at least 1). ``loss_bbox``: GIoU of positives' decoded
        boxes, weighted by their matched IoU, divided by the same sum.

        Returns:
            dict: ``loss_cls`` and ``loss_bbox``, each a list of scalars per level.
        """
        featmap_sizes, priors, cls_flat, decoded = self._flat_predictions(cls_scores, bbox_preds)
        targets = self.get_targets(cls_flat.detach(), decoded.detach(), priors, featmap_sizes,
                                   batch_gt_instances, batch_img_metas)
        return self._box_losses(cls_flat, decoded, targets, featmap_sizes)

    def _flat_predictions(self, cls_scores: List[Tensor], bbox_preds: List[Tensor]
                          ) -> Tuple[List[torch.Size], Tensor, Tensor, Tensor]:
        """Featmap sizes, (P, 4) priors with strides, (B, P, C) class
        logits and (B, P, 4) decoded boxes of all levels."""
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        priors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, device=cls_scores[0].device, with_stride=True))
        cls_flat = levels_to_anchor_rows(cls_scores, self.cls_out_channels)
        decoded = distance2bbox(priors[:, :2], levels_to_anchor_rows(bbox_preds, 4))
        return featmap_sizes, priors, cls_flat, decoded

    def _box_losses(self, cls_flat: Tensor, decoded: Tensor, targets: RTMDetTargets,
                    featmap_sizes: List[torch.Size]) -> Dict[str, List[Tensor]]:
        """``loss_cls`` and ``loss_bbox`` per level (see :meth:`loss_by_feat`).
        The box loss gathers the positives on the CPU (MMDetection's numbers
        bit for bit); elsewhere it runs over every point with zero weight off
        the positives (:func:`dense_box_loss`), so that nothing waits for the
        device."""
        avg_factor = reduce_mean(targets.assign_metrics.sum()).clamp(min=1)

        losses_cls, losses_bbox = [], []
        start = 0
        for height, width in featmap_sizes:
            level = slice(start, start + height * width * self.num_base_priors)
            start = level.stop
            labels = targets.labels[:, level].reshape(-1)
            metrics = targets.assign_metrics[:, level].reshape(-1)
            losses_cls.append(self.loss_cls(
                cls_flat[:, level].reshape(-1, self.cls_out_channels), (labels, metrics),
                targets.label_weights[:, level].reshape(-1), avg_factor=1.0) / avg_factor)
            pos_mask = (labels >= 0) & (labels < self.num_classes)
            level_boxes = decoded[:, level].reshape(-1, 4)
            level_targets = targets.bbox_targets[:, level].reshape(-1, 4)
            if not gathers_positives(labels):
                loss_bbox = dense_box_loss(self.loss_bbox, level_boxes, level_targets, pos_mask,
                                           metrics, avg_factor=1.0)
            elif pos_mask.any():
                pos = pos_mask.nonzero().squeeze(1)
                loss_bbox = self.loss_bbox(level_boxes[pos], level_targets[pos],
                                           weight=metrics[pos], avg_factor=1.0)
            else:
                loss_bbox = level_boxes.sum() * 0
            losses_bbox.append(loss_bbox / avg_factor)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)

    @torch.no_grad()
    def get_targets(self, cls_scores: Tensor, decoded_bboxes: Tensor, priors: Tensor,
                    featmap_sizes: List[torch.Size], batch_gt_instances: List[InstanceData],
                    batch_img_metas: List[dict], gt_centers: Optional[Tensor] = None
                    ) -> RTMDetTargets:
        """Assign every point of every image at once.

        Args:
            cls_scores (Tensor): (B, P, C) class logits.
            decoded_bboxes (Tensor): (B, P, 4) predicted boxes.
            priors (Tensor): (P, 4) x, y, stride_w, stride_h of all levels.
            featmap_sizes (list): (h, w) of each level.
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``.
            batch_img_metas (list[dict]): ``pad_shape`` (or ``img_shape``),
                and ``img_shape`` with ``train_cfg.allowed_border >= 0``.
            gt_centers (Tensor, optional): (B, K, 2) gt centres for the
                assigner's centre prior, K gts per image padded as
                :func:`pad_gt_instances` pads them (box centres when None).

        Returns:
            RTMDetTargets: the targets, (B, P) and (B, P, 4).
        """
        device = priors.device
        prior_valid = self._valid_priors(priors, featmap_sizes, batch_img_metas)
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances, device)
        centers = {} if gt_centers is None else dict(gt_centers=gt_centers)
        gt_inds, max_overlaps, assigned_labels = self.assigner.assign_batch(
            priors, decoded_bboxes, cls_scores, prior_valid, gt_bboxes, gt_labels, gt_valid,
            **centers)

        pos = gt_inds > NEGATIVE_GT_IND
        matched = (gt_inds - 1).clamp(min=0)
        bbox_targets = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))
        pos_weight = self.train_cfg.get('pos_weight', -1)
        label_weights = torch.where(pos, 1.0 if pos_weight <= 0 else pos_weight,
                                    (gt_inds == NEGATIVE_GT_IND).float())
        return RTMDetTargets(
            labels=torch.where(pos, assigned_labels, self.num_classes),
            label_weights=label_weights,
            bbox_targets=torch.where(pos[..., None], bbox_targets, 0.),
            assign_metrics=torch.where(pos, max_overlaps, 0.),
            gt_inds=torch.where(pos, gt_inds - 1, -1))


@MODELS.register_module()
class RTMDetSepBNHead(RTMDetHead):
    """RTMDet's head with separate BN (and predictors) per level; with
    ``share_conv`` the tower convs' weights are shared by every level, as in
    MMDetection (whose state_dict repeats them under each level's keys).

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        share_conv (bool): Share the tower convs between levels.
        use_depthwise (bool): Depthwise-separable tower convs.
        norm_cfg (dict): Tower norm config.
        act_cfg (dict): Tower activation.
        pred_kernel_size (int): Kernel of the predictor convs.
        exp_on_reg (bool): Distances are ``exp(output) * stride`` (else
            ``output * stride``).
        **kwargs: :class:`RTMDetHead`'s arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 share_conv: bool = True,
                 use_depthwise: bool = False,
                 norm_cfg: dict = dict(type='BN', momentum=0.03, eps=0.001),
                 act_cfg: dict = dict(type='SiLU'),
                 pred_kernel_size: int = 1,
                 exp_on_reg: bool = False,
                 **kwargs) -> None:
        self.share_conv = share_conv
        self.exp_on_reg = exp_on_reg
        self.use_depthwise = use_depthwise
        super().__init__(num_classes, in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         pred_kernel_size=pred_kernel_size, **kwargs)

    def _init_layers(self) -> None:
        conv = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        num_levels = len(self.prior_generator.strides)
        self.cls_convs = nn.ModuleList(self._tower(conv) for _ in range(num_levels))
        self.reg_convs = nn.ModuleList(self._tower(conv) for _ in range(num_levels))
        predictors = [self._predictors() for _ in range(num_levels)]
        self.rtm_cls = nn.ModuleList(cls for cls, _, _ in predictors)
        self.rtm_reg = nn.ModuleList(reg for _, reg, _ in predictors)
        if self.with_objectness:
            self.rtm_obj = nn.ModuleList(obj for _, _, obj in predictors)
        if self.share_conv:
            for level in range(1, num_levels):
                for i in range(self.stacked_convs):
                    self.cls_convs[level][i].conv = self.cls_convs[0][i].conv
                    self.reg_convs[level][i].conv = self.reg_convs[0][i].conv

    def _predictor_layers(self) -> List[Tuple[nn.Module, nn.Module, Optional[nn.Module]]]:
        objectness = self.rtm_obj if self.with_objectness else [None] * len(self.rtm_cls)
        return list(zip(self.rtm_cls, self.rtm_reg, objectness))

    def forward(self, feats: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Every level, each with its own towers' norms and predictors; see
        :meth:`RTMDetHead.forward`."""
        cls_scores, bbox_preds = [], []
        for level, (x, (stride, _)) in enumerate(zip(feats, self.prior_generator.strides)):
            cls_feat, reg_feat = x, x
            for layer in self.cls_convs[level]:
                cls_feat = layer(cls_feat)
            for layer in self.reg_convs[level]:
                reg_feat = layer(reg_feat)
            rtm_obj = self.rtm_obj[level] if self.with_objectness else None
            cls_scores.append(self._classify(self.rtm_cls[level](cls_feat), reg_feat, rtm_obj))
            reg_dist = self.rtm_reg[level](reg_feat)
            bbox_preds.append((reg_dist.exp() if self.exp_on_reg else reg_dist) * stride)
        return cls_scores, bbox_preds
