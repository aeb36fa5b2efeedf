"""RPNHead: the region proposal network of Faster R-CNN (Ren et al., 2015)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.models.layers.bbox_nms import batched_nms
from detlab.registry import MODELS
from detlab.structures import SampleList, scale_boxes
from .anchor_head import AnchorHead


@MODELS.register_module()
class RPNHead(AnchorHead):
    """Class-agnostic objectness and box deltas for every anchor.

    One 3x3 conv (``rpn_conv``, or ``num_convs`` ConvModules), then 1x1
    ``rpn_cls`` and ``rpn_reg``: MMDetection's layout and state_dict keys.
    Targets and losses are :class:`AnchorHead`'s (typically with a
    ``RandomSampler``); losses are named ``loss_rpn_cls`` and
    ``loss_rpn_bbox``. Proposals: per level the ``nms_pre`` best anchors,
    decoded and clipped, boxes not wider and taller than ``min_bbox_size``
    dropped, NMS within each level (``nms``), then the ``max_per_img`` best.

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
        self.num_convs = num_convs
        super().__init__(num_classes=num_classes, in_channels=in_channels, init_cfg=init_cfg,
                         **kwargs)

    def _init_layers(self) -> None:
        if self.num_convs > 1:
            # Not in place: the input of each conv is needed again for its gradient.
            self.rpn_conv = nn.Sequential(*[
                ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels,
                           3, padding=1, inplace=False) for i in range(self.num_convs)])
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
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None) -> dict:
        """``loss_rpn_cls`` and ``loss_rpn_bbox``; the gt labels must all be 0."""
        losses = super().loss_by_feat(cls_scores, bbox_preds, batch_gt_instances,
                                      batch_img_metas, batch_gt_instances_ignore)
        return dict(loss_rpn_cls=losses['loss_cls'], loss_rpn_bbox=losses['loss_bbox'])

    def loss_and_predict(self, feats: Sequence[Tensor], batch_data_samples: SampleList,
                         proposal_cfg: Optional[dict] = None
                         ) -> Tuple[dict, List[InstanceData]]:
        """Losses and, from the same (detached) outputs, the proposals of each image.

        Args:
            feats (Sequence[Tensor]): (B, C, H_l, W_l) per level.
            batch_data_samples (list[DetDataSample]): gt labels all 0.
            proposal_cfg (dict, optional): Proposal settings (``nms_pre``,
                ``nms``, ``max_per_img``, ``min_bbox_size``); ``test_cfg`` if None.
        """
        cls_scores, bbox_preds = self(feats)
        losses = self.loss_by_feat(
            cls_scores, bbox_preds, [s.gt_instances for s in batch_data_samples],
            [s.metainfo for s in batch_data_samples],
            [s.get('ignored_instances') for s in batch_data_samples])
        proposals = self.predict_by_feat(cls_scores, bbox_preds,
                                         [s.metainfo for s in batch_data_samples],
                                         cfg=proposal_cfg)
        return losses, proposals

    def predict_by_feat(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        batch_img_metas: List[dict], cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Proposals of each image: ``bboxes`` (P, 4), ``scores`` (P,), ``labels`` (P,) all 0.

        Boxes are in the network input's pixels, or the original image's
        with ``rescale=True``. Gradients do not flow into the proposals.
        """
        cfg = cfg if cfg is not None else self.test_cfg
        if cfg is None or cfg.get('nms') is None:
            raise ValueError('RPNHead needs a proposal config with nms, e.g. test_cfg.rpn='
                             "dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', "
                             'iou_threshold=0.7), min_bbox_size=0)')
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        anchors = self.prior_generator.grid_priors(featmap_sizes, dtype=cls_scores[0].dtype,
                                                   device=cls_scores[0].device)
        return [
            self._proposals_single([score[i].detach() for score in cls_scores],
                                   [pred[i].detach() for pred in bbox_preds], anchors, img_meta,
                                   cfg, rescale)
            for i, img_meta in enumerate(batch_img_metas)
        ]

    def _proposals_single(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                          anchors: List[Tensor], img_meta: dict, cfg: dict,
                          rescale: bool) -> InstanceData:
        """One image's proposals from (A, H, W) scores and (A*4, H, W) deltas per level."""
        nms_pre = cfg.get('nms_pre', -1)
        level_scores, level_deltas, level_anchors, level_ids = [], [], [], []
        for level, (cls_score, bbox_pred, priors) in enumerate(zip(cls_scores, bbox_preds,
                                                                   anchors)):
            scores = cls_score.permute(1, 2, 0).reshape(-1).sigmoid()
            deltas = bbox_pred.permute(1, 2, 0).reshape(-1, self.bbox_coder.encode_size)
            if 0 < nms_pre < scores.shape[0]:
                # A full sort, as MMDetection, so that ties keep the same anchors.
                scores, order = scores.sort(descending=True)
                scores, order = scores[:nms_pre], order[:nms_pre]
                deltas, priors = deltas[order], priors[order]
            level_scores.append(scores)
            level_deltas.append(deltas)
            level_anchors.append(priors)
            level_ids.append(scores.new_full((scores.size(0), ), level, dtype=torch.long))
        bboxes = self.bbox_coder.decode(torch.cat(level_anchors), torch.cat(level_deltas),
                                        max_shape=img_meta['img_shape'])
        scores, level_ids = torch.cat(level_scores), torch.cat(level_ids)
        if rescale:
            bboxes = scale_boxes(bboxes, [1 / s for s in img_meta['scale_factor'][:2]])
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            wide = ((bboxes[:, 2] - bboxes[:, 0]) > min_size) & \
                ((bboxes[:, 3] - bboxes[:, 1]) > min_size)
            if not wide.all():
                bboxes, scores, level_ids = bboxes[wide], scores[wide], level_ids[wide]
        if bboxes.numel() == 0:
            return InstanceData(bboxes=bboxes.new_zeros(0, 4), scores=scores.new_zeros(0),
                                labels=scores.new_zeros(0, dtype=torch.long))
        dets, keep = batched_nms(bboxes, scores, level_ids, cfg['nms'])
        max_per_img = cfg.get('max_per_img', -1)
        if max_per_img > 0:
            dets, keep = dets[:max_per_img], keep[:max_per_img]
        return InstanceData(bboxes=bboxes[keep], scores=dets[:, -1],
                            labels=scores.new_zeros(len(keep), dtype=torch.long))
