"""RPNHead: the region proposal network of Faster R-CNN (Ren et al., 2015)."""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from ..utils import bboxes_to_original, conv_tower
from .anchor_head import AnchorHead
from .base_dense_head import small_bboxes_suppressed_by_nms


@MODELS.register_module()
class RPNHead(AnchorHead):
    """Class-agnostic objectness and box deltas for every anchor.

    One 3x3 conv (``rpn_conv``, or ``num_convs`` ConvModules), then 1x1
    ``rpn_cls`` and ``rpn_reg``: MMDetection's layout and state_dict keys.
    Targets and losses are :class:`AnchorHead`'s (typically with a
    ``RandomSampler``); losses are named ``loss_rpn_cls`` and
    ``loss_rpn_bbox``, one entry per level. Proposals: per level the
    ``nms_pre`` best anchors, decoded and clipped, boxes not wider and taller
    than ``min_bbox_size`` dropped, NMS within each level (``nms``), then the
    ``max_per_img`` best (-1: all).

    Args:
        in_channels (int): Channels of each input level.
        num_classes (int): Must be 1 (objectness).
        init_cfg (dict): Normal(0, 0.01) convs, as MMDetection.
        num_convs (int): Convs before the predictors. Defaults to 1.
        **kwargs: :class:`AnchorHead` arguments (anchor_generator, bbox_coder,
            loss_cls, loss_bbox, train_cfg, test_cfg, ...).
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int = 1,
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Conv2d', std=0.01),
                 num_convs: int = 1,
                 **kwargs) -> None:
        if num_classes != 1:
            raise ValueError(f'RPNHead scores objectness, so num_classes must be 1 (got '
                             f'{num_classes}); the classes belong to the roi_head.')
        loss_cls = kwargs.get('loss_cls', dict(use_sigmoid=True))
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError('RPNHead scores objectness with a sigmoid; set '
                             f'loss_cls.use_sigmoid=True (got loss_cls={dict(loss_cls)}).')
        self.num_convs = num_convs
        super().__init__(num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg,
                         **kwargs)

    def _init_layers(self) -> None:
        if self.num_convs > 1:
            # Not in place: the input of each conv is needed again for its gradient.
            self.rpn_conv = conv_tower(self.in_channels, self.feat_channels, self.num_convs,
                                       inplace=False)
        else:
            self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels,
                                 self.num_base_priors * self.bbox_coder.encode_size, 1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One level: (B, C, H, W) -> (B, A, H, W) objectness logits, (B, A*4, H, W) deltas."""
        x = F.relu(self.rpn_conv(x))
        return self.rpn_cls(x), self.rpn_reg(x)

    def loss_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                     batch_gt_instances: List[InstanceData], batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, List[Tensor]]:
        """``loss_rpn_cls`` and ``loss_rpn_bbox``, one scalar per level each;
        the gt labels must all be 0."""
        losses = super().loss_by_feat(cls_scores, bbox_preds, batch_gt_instances,
                                      batch_img_metas, batch_gt_instances_ignore)
        return dict(loss_rpn_cls=losses['loss_cls'], loss_rpn_bbox=losses['loss_bbox'])

    def _predict_by_feat_single(self, cls_score_list: List[Tensor], bbox_pred_list: List[Tensor],
                                score_factor_list: Optional[List[Tensor]],
                                mlvl_priors: List[Tensor], img_meta: dict, cfg: dict,
                                rescale: bool = False, with_nms: bool = True) -> InstanceData:
        """One image's proposals from (A, H, W) objectness logits and
        (A*4, H, W) deltas per level: per level the ``nms_pre`` best anchors
        (a full sort, as MMDetection, so that ties keep the same anchors),
        decoded and clipped, then :meth:`_bbox_post_process`."""
        if cfg is None or cfg.get('nms') is None:
            raise ValueError('RPNHead needs a proposal config with nms, e.g. test_cfg.rpn='
                             "dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', "
                             'iou_threshold=0.7), min_bbox_size=0)')
        nms_pre = cfg.get('nms_pre', -1)
        encode_size = self.bbox_coder.encode_size
        mlvl_scores, mlvl_preds, mlvl_valid_priors, level_ids = [], [], [], []
        for level, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_score_list, bbox_pred_list, mlvl_priors)):
            scores = cls_score.permute(1, 2, 0).reshape(-1).float().sigmoid()
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, encode_size).float()
            if 0 < nms_pre < scores.shape[0]:
                scores, order = scores.sort(descending=True)
                scores, order = scores[:nms_pre], order[:nms_pre]
                bbox_pred, priors = bbox_pred[order], priors[order]
            mlvl_scores.append(scores)
            mlvl_preds.append(bbox_pred)
            mlvl_valid_priors.append(priors)
            level_ids.append(scores.new_full((scores.size(0), ), level, dtype=torch.long))
        results = InstanceData(
            bboxes=self.bbox_coder.decode(torch.cat(mlvl_valid_priors), torch.cat(mlvl_preds),
                                          max_shape=img_meta['img_shape'][:2]),
            scores=torch.cat(mlvl_scores), level_ids=torch.cat(level_ids))
        return self._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                       img_meta=img_meta)

    def _bbox_post_process(self, results: InstanceData, cfg: dict, rescale: bool = False,
                           with_nms: bool = True, img_meta: Optional[dict] = None) -> InstanceData:
        """Rescale, drop small boxes, NMS within each level (not per class:
        proposals have none), keep ``max_per_img``; every label 0.

        Args:
            results (InstanceData): ``bboxes`` (N, 4), ``scores`` (N,) and
                ``level_ids`` (N,).
            cfg (dict): ``min_bbox_size``, ``nms``, ``max_per_img``.
            rescale (bool): To the original image (needs ``img_meta``).
            with_nms (bool): Must be True: proposals always go through NMS.
            img_meta (dict, optional): ``scale_factor`` for ``rescale``.
        """
        if not with_nms:
            raise ValueError('RPNHead proposals always go through NMS; with_nms must be True')
        if rescale:
            results.bboxes = bboxes_to_original(results.bboxes, img_meta)
        results = small_bboxes_suppressed_by_nms(results, cfg, 'level_ids')
        results.labels = results.scores.new_zeros(len(results), dtype=torch.long)
        del results.level_ids
        return results
