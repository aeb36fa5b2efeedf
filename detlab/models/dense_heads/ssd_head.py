"""SSDHead (Liu et al., "SSD: Single Shot MultiBox Detector", 2016) and SSDLite's
depthwise variant (Sandler et al., "MobileNetV2", 2018).

One classifier and one regressor per level (each level has its own number of
anchors), a softmax over ``num_classes + 1`` outputs (background last), and
the loss with hard negative mining: per image, every positive anchor and the
``neg_pos_ratio`` times as many negatives with the highest class loss.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..losses.utils import AVG_FACTOR_EPS
from ..utils import levels_to_anchor_rows
from .anchor_head import AnchorHead


@MODELS.register_module()
class SSDHead(AnchorHead):
    """MMDetection 3.3's SSDHead: its arguments, ``train_cfg`` keys, state_dict
    keys (``cls_convs.{level}.{i}``, ``reg_convs.{level}.{i}``) and losses.

    Args:
        num_classes (int): Foreground classes.
        in_channels (Sequence[int]): Channels of each input level.
        stacked_convs (int): 3x3 convs before each predictor (0 in SSD and SSDLite).
        feat_channels (int): Channels of those convs.
        use_depthwise (bool): SSDLite: the stacked convs are depthwise
            separable, a depthwise 3x3 ConvModule precedes 1x1 predictors.
        conv_cfg, norm_cfg, act_cfg (dict, optional): Of the convs before the
            predictors (the predictors are plain convs).
        anchor_generator (dict): Prior generator config (``SSDAnchorGenerator``).
        bbox_coder (dict): Box coder config.
        reg_decoded_bbox (bool): Regress decoded boxes.
        train_cfg (dict): ``assigner``, ``sampler``, ``neg_pos_ratio``,
            ``smoothl1_beta``, ``allowed_border``, ``pos_weight``.
        test_cfg (dict): ``nms_pre``, ``score_thr``, ``nms``, ``max_per_img``, ``min_bbox_size``.
        init_cfg (dict): Xavier-uniform convs, zero biases, as MMDetection.
    """

    def __init__(self,
                 num_classes: int = 80,
                 in_channels: Sequence[int] = (512, 1024, 512, 256, 256, 256),
                 stacked_convs: int = 0,
                 feat_channels: int = 256,
                 use_depthwise: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = None,
                 anchor_generator: dict = dict(
                     type='SSDAnchorGenerator', scale_major=False, input_size=300,
                     strides=[8, 16, 32, 64, 100, 300],
                     ratios=([2], [2, 3], [2, 3], [2, 3], [2], [2]),
                     basesize_ratio_range=(0.1, 0.9)),
                 bbox_coder: dict = dict(
                     type='DeltaXYWHBBoxCoder', clip_border=True,
                     target_means=[.0, .0, .0, .0], target_stds=[1.0, 1.0, 1.0, 1.0]),
                 reg_decoded_bbox: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Xavier', layer='Conv2d', distribution='uniform', bias=0)) -> None:
        self.stacked_convs = stacked_convs
        self.use_depthwise = use_depthwise
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        if train_cfg and 'neg_pos_ratio' not in train_cfg:
            raise AssertionValueError('SSDHead: train_cfg needs neg_pos_ratio (negatives kept '
                                      f'per positive, 3 in SSD); got keys {sorted(train_cfg)}')
        beta = train_cfg.get('smoothl1_beta', 1.0) if train_cfg else 1.0
        # The softmax classifier and Smooth L1 of SSD; the class loss is taken per
        # anchor and then mined (see loss_by_feat), so neither takes a config.
        super().__init__(num_classes, list(in_channels), feat_channels,
                         anchor_generator=anchor_generator, bbox_coder=bbox_coder,
                         reg_decoded_bbox=reg_decoded_bbox,
                         loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
                         loss_bbox=dict(type='SmoothL1Loss', beta=beta),
                         train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg)
        # One count per level (MMDetection's SSDHead keeps the list).
        self.num_base_priors = list(self.prior_generator.num_base_priors)

    def _init_layers(self) -> None:
        num_base_priors = self.prior_generator.num_base_priors
        if len(self.in_channels) != len(num_base_priors):
            raise AssertionValueError(f'SSDHead: {len(self.in_channels)} in_channels for '
                                      f'{len(num_base_priors)} anchor levels')
        conv_type = DepthwiseSeparableConvModule if self.use_depthwise else ConvModule
        layer_cfg = dict(conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.cls_convs, self.reg_convs = nn.ModuleList(), nn.ModuleList()
        for channels, num_priors in zip(self.in_channels, num_base_priors):
            for convs, out_per_prior in ((self.cls_convs, self.cls_out_channels),
                                         (self.reg_convs, 4)):
                layers, in_channel = [], channels
                for _ in range(self.stacked_convs):
                    layers.append(conv_type(in_channel, self.feat_channels, 3, padding=1,
                                            **layer_cfg))
                    in_channel = self.feat_channels
                if self.use_depthwise:
                    layers.append(ConvModule(in_channel, in_channel, 3, padding=1,
                                             groups=in_channel, **layer_cfg))
                kernel = 1 if self.use_depthwise else 3
                layers.append(nn.Conv2d(in_channel, num_priors * out_per_prior, kernel,
                                        padding=kernel // 2))
                convs.append(nn.Sequential(*layers))

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per level (B, C_l, H, W) -> (B, A_l * (num_classes + 1), H, W) and (B, A_l * 4, H, W)."""
        if len(x) != len(self.cls_convs):
            raise AssertionValueError(f'SSDHead: got {len(x)} feature levels, built for '
                                      f'{len(self.cls_convs)}')
        cls_scores = [cls_conv(feat) for feat, cls_conv in zip(x, self.cls_convs)]
        bbox_preds = [reg_conv(feat) for feat, reg_conv in zip(x, self.reg_convs)]
        return cls_scores, bbox_preds

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, List[Tensor]]:
        """Losses per image, each divided by the batch's number of positives.

        Class loss of an image: the cross-entropy of its positive anchors plus
        that of its ``neg_pos_ratio * num_pos`` hardest negatives (all of them
        when there are fewer). Box loss: Smooth L1 (``smoothl1_beta``) over
        the positives. The batch is mined at once (a sort per image row), with
        no host-device synchronisation.

        Returns:
            dict: ``loss_cls`` and ``loss_bbox``, lists of one scalar per image.
        """
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        mlvl_anchors = self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=cls_scores[0].device)
        anchors = torch.cat(mlvl_anchors)
        targets = self.get_targets(anchors, featmap_sizes, batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore)
        batch, num_anchors = targets.labels.shape
        all_cls_scores = levels_to_anchor_rows(cls_scores, self.cls_out_channels).float()
        all_bbox_preds = levels_to_anchor_rows(bbox_preds, 4).float()

        loss_cls_all = self.loss_cls(
            all_cls_scores.reshape(-1, self.cls_out_channels), targets.labels.reshape(-1),
            targets.label_weights.reshape(-1), reduction_override='none').reshape(batch, -1)
        positive = (targets.labels >= 0) & (targets.labels < self.num_classes)
        negative = targets.labels == self.num_classes
        num_hard = torch.minimum(self.train_cfg['neg_pos_ratio'] * positive.sum(dim=1),
                                 negative.sum(dim=1))
        # Class losses are >= 0, so -1 sorts every non-negative anchor after the negatives.
        ranked = torch.where(negative, loss_cls_all, -1.0).sort(dim=1, descending=True).values
        hard = torch.arange(num_anchors, device=ranked.device)[None] < num_hard[:, None]
        loss_cls = ((loss_cls_all * positive).sum(dim=1)
                    + (ranked * hard).sum(dim=1)) / targets.avg_factor

        if self.reg_decoded_bbox:
            all_bbox_preds = self.bbox_coder.decode(
                anchors.expand(batch, -1, -1).reshape(-1, 4),
                all_bbox_preds.reshape(-1, 4)).reshape(batch, -1, 4)
        loss_bbox = self.loss_bbox(all_bbox_preds, targets.bbox_targets, targets.bbox_weights,
                                   reduction_override='none').sum(dim=(1, 2))
        loss_bbox = loss_bbox / (targets.avg_factor + AVG_FACTOR_EPS)
        return dict(loss_cls=list(loss_cls.unbind()), loss_bbox=list(loss_bbox.unbind()))
