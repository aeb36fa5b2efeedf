"""The ``loss`` and ``predict`` entry points of dense heads, and detections from
their outputs optionally weighted by a per-prior quality score (FCOS's and
ATSS's centerness), as MMDetection's ``BaseDenseHead`` computes them."""
from typing import List, Optional, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.models.layers.bbox_nms import batched_nms
from detlab.structures import SampleList, scale_boxes
from .anchor_head import top_scores


class DenseHeadMixin:
    """``loss``, ``predict`` and ``predict_by_feat`` for a head whose ``forward``
    returns ``(cls_scores, bbox_preds)`` or ``(cls_scores, bbox_preds, score_factors)``.

    ``loss`` hands the outputs and the batch's annotations to the head's
    ``loss_by_feat``. For ``predict`` the head provides ``prior_generator``, ``bbox_coder``,
    ``cls_out_channels`` (sigmoid classifiers) and ``test_cfg``. Per image and
    level the ``nms_pre`` best (prior, class) pairs scoring above
    ``score_thr`` are kept; their boxes are decoded and clipped to the image,
    optionally rescaled to the original image, their scores multiplied by the
    sigmoid of the score factor, boxes not wider and taller than
    ``min_bbox_size`` dropped, then NMS (``test_cfg.nms``) keeps at most
    ``max_per_img``.
    """

    def loss(self, feats: Sequence[Tensor], batch_data_samples: SampleList) -> dict:
        """Losses of a batch: ``loss_by_feat`` on this head's outputs."""
        outs = self(feats)
        return self.loss_by_feat(
            *outs,
            batch_gt_instances=[s.gt_instances for s in batch_data_samples],
            batch_img_metas=[s.metainfo for s in batch_data_samples],
            batch_gt_instances_ignore=[s.get('ignored_instances') for s in batch_data_samples])

    def predict(self, feats: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        outs = self(feats)
        return self.predict_by_feat(*outs,
                                    batch_img_metas=[s.metainfo for s in batch_data_samples],
                                    rescale=rescale)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None,
                        rescale: bool = False) -> List[InstanceData]:
        """Detections per image.

        Args:
            cls_scores (list[Tensor]): Per level (B, A * C, H, W) logits.
            bbox_preds (list[Tensor]): Per level (B, A * 4, H, W) box encodings.
            score_factors (list[Tensor], optional): Per level (B, A, H, W)
                quality logits.
            batch_img_metas (list[dict]): ``img_shape`` (and ``scale_factor``
                with ``rescale``) per image.
            cfg (dict, optional): Overrides ``self.test_cfg``.
            rescale (bool): Boxes in the original image's pixels rather than
                the network input's.

        Returns:
            list[InstanceData]: ``bboxes`` (M, 4), ``scores`` (M,), ``labels``
            (M,) per image, by descending score.
        """
        if batch_img_metas is None:
            raise ValueError(f'{type(self).__name__}.predict_by_feat needs batch_img_metas')
        cfg = cfg or self.test_cfg
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        priors = self.prior_generator.grid_priors(featmap_sizes, dtype=torch.float32,
                                                  device=cls_scores[0].device)
        results = []
        for i, img_meta in enumerate(batch_img_metas):
            factors = None if score_factors is None else [f[i] for f in score_factors]
            results.append(self._predict_single(
                [score[i] for score in cls_scores], [pred[i] for pred in bbox_preds], factors,
                priors, img_meta, cfg, rescale))
        return results

    def _predict_single(self, cls_scores: List[Tensor], bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]], priors: List[Tensor],
                        img_meta: dict, cfg: dict, rescale: bool) -> InstanceData:
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0.0)
        encode_size = self.bbox_coder.encode_size
        kept_priors, kept_preds, kept_scores, kept_labels, kept_factors = [], [], [], [], []
        for level, (cls_score, bbox_pred) in enumerate(zip(cls_scores, bbox_preds)):
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).float()
            preds = bbox_pred.permute(1, 2, 0).reshape(-1, encode_size).float()
            scores, labels, prior_index = top_scores(scores.sigmoid(), score_thr, nms_pre)
            kept_priors.append(priors[level][prior_index])
            kept_preds.append(preds[prior_index])
            kept_scores.append(scores)
            kept_labels.append(labels)
            if score_factors is not None:
                factor = score_factors[level].permute(1, 2, 0).reshape(-1).float().sigmoid()
                kept_factors.append(factor[prior_index])
        bboxes = self.bbox_coder.decode(torch.cat(kept_priors), torch.cat(kept_preds),
                                        max_shape=img_meta['img_shape'][:2])
        scores, labels = torch.cat(kept_scores), torch.cat(kept_labels)
        if rescale:
            bboxes = scale_boxes(bboxes, [1 / s for s in img_meta['scale_factor'][:2]])
        if score_factors is not None:
            scores = scores * torch.cat(kept_factors)
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            wide = ((bboxes[:, 2] - bboxes[:, 0] > min_size)
                    & (bboxes[:, 3] - bboxes[:, 1] > min_size))
            bboxes, scores, labels = bboxes[wide], scores[wide], labels[wide]
        if cfg.get('nms') is not None and bboxes.numel() > 0:
            dets, keep = batched_nms(bboxes, scores, labels, cfg['nms'])
            max_per_img = cfg.get('max_per_img', -1)
            keep = keep if max_per_img < 0 else keep[:max_per_img]
            # Soft-NMS decays scores, so they come from the NMS output.
            bboxes, scores, labels = bboxes[keep], dets[:len(keep), -1], labels[keep]
        return InstanceData(bboxes=bboxes, scores=scores, labels=labels)
