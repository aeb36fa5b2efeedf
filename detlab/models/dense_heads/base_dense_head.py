"""BaseDenseHead: the one path from dense head outputs to losses and to
per-image detections (MMDetection's ``BaseDenseHead`` methods and signatures).

Inference, image by image: ``predict_by_feat`` hands each image's levels to
``_predict_by_feat_single``, which keeps per level the ``nms_pre`` best
(prior, class) pairs scoring above ``score_thr``, decodes their boxes
(clipped to ``img_shape``) and hands them to ``_bbox_post_process``: rescale to
the original image, multiply by the score factors (centerness), drop boxes not
wider and taller than ``min_bbox_size``, NMS (``test_cfg.nms``), keep
``max_per_img`` (negative: all). A head changes one step by overriding it
(RPNHead runs NMS per level instead of per class).
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.models.layers.bbox_nms import batched_nms
from detlab.structures import SampleList
from ..utils import (bboxes_to_original, filter_scores_and_topk, gathers_positives,
                     select_single_mlvl, unpack_gt_instances)


class BaseDenseHead(BaseModule, metaclass=ABCMeta):
    """Base of dense heads: ``loss``, ``loss_and_predict``, ``predict`` and the
    decode / NMS / rescale path.

    A subclass provides ``forward`` (returning ``(cls_scores, bbox_preds)`` or
    ``(cls_scores, bbox_preds, score_factors)``, one list entry per level),
    ``loss_by_feat``, and for inference these attributes: ``prior_generator``
    (``grid_priors``), ``bbox_coder`` (``decode``, ``encode_size``),
    ``cls_out_channels``, ``use_sigmoid_cls`` (else a softmax whose last
    channel is background) and ``test_cfg``.
    """

    use_sigmoid_cls = True

    # ---- training ---------------------------------------------------------
    def loss(self, x: Sequence[Tensor], batch_data_samples: SampleList) -> dict:
        """Losses of a batch: ``loss_by_feat`` on this head's outputs."""
        outs = self(x)
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(
            batch_data_samples)
        return self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                 batch_gt_instances_ignore)

    @abstractmethod
    def loss_by_feat(self, *args, **kwargs) -> dict:
        """Losses from the head's outputs followed by ``batch_gt_instances``,
        ``batch_img_metas`` and ``batch_gt_instances_ignore``."""

    def loss_and_predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                         proposal_cfg: Optional[dict] = None
                         ) -> Tuple[dict, List[InstanceData]]:
        """Losses and, from the same (detached) outputs, each image's results
        (an RPN's proposals).

        Args:
            x (Sequence[Tensor]): (B, C, H_l, W_l) per level.
            batch_data_samples (list[DetDataSample]): With ``gt_instances``.
            proposal_cfg (dict, optional): Post-processing settings;
                ``test_cfg`` when None.
        """
        outs = self(x)
        batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = unpack_gt_instances(
            batch_data_samples)
        losses = self.loss_by_feat(*outs, batch_gt_instances, batch_img_metas,
                                   batch_gt_instances_ignore)
        predictions = self.predict_by_feat(*outs, batch_img_metas=batch_img_metas,
                                           cfg=proposal_cfg)
        return losses, predictions

    # ---- inference --------------------------------------------------------
    def predict(self, x: Sequence[Tensor], batch_data_samples: SampleList,
                rescale: bool = False) -> List[InstanceData]:
        """Detections of each image of the batch; see :meth:`predict_by_feat`."""
        outs = self(x)
        return self.predict_by_feat(*outs,
                                    batch_img_metas=[s.metainfo for s in batch_data_samples],
                                    rescale=rescale)

    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None,
                        rescale: bool = False,
                        with_nms: bool = True,
                        mlvl_extras: Optional[Dict[str, List[Tensor]]] = None
                        ) -> List[InstanceData]:
        """Detections per image.

        Args:
            cls_scores (list[Tensor]): Per level (B, A * C, H, W) logits.
            bbox_preds (list[Tensor]): Per level (B, A * D, H, W) box
                encodings, D = ``bbox_coder.encode_size``.
            score_factors (list[Tensor], optional): Per level (B, A, H, W)
                quality logits (centerness), multiplied into the scores.
            batch_img_metas (list[dict]): ``img_shape`` (and ``scale_factor``
                with ``rescale``) per image.
            cfg (dict, optional): Overrides ``self.test_cfg``.
            rescale (bool): Boxes in the original image's pixels rather than
                the network input's.
            with_nms (bool): Run NMS and ``max_per_img``; False returns every
                box that passed the score filter (for test-time augmentation).
            mlvl_extras (dict[str, list[Tensor]], optional): Further per-prior
                outputs, each per level (B, D, H, W) (e.g. RTMDet-Ins's mask
                kernels): every detection keeps its prior's D values under the
                same key of its results.

        Returns:
            list[InstanceData]: ``bboxes`` (M, 4), ``scores`` (M,), ``labels``
            (M,) per image, by descending score after NMS.
        """
        name = type(self).__name__
        if score_factors is not None and any(isinstance(f, dict) for f in score_factors):
            raise TypeError(f'{name}.predict_by_feat got image metainfo dicts as score_factors; '
                            'pass them as batch_img_metas=... (the third positional argument is '
                            "score_factors, as in MMDetection's signature)")
        if batch_img_metas is None:
            raise ValueError(f'{name}.predict_by_feat needs batch_img_metas')
        if len(cls_scores) != len(bbox_preds):
            raise ValueError(f'{name}.predict_by_feat: {len(cls_scores)} levels of '
                             f'cls_scores but {len(bbox_preds)} of bbox_preds')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError(f'{name}.predict_by_feat needs a test_cfg (nms_pre, '
                             'score_thr, nms, max_per_img) or a cfg argument')
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        # fp32 priors, also when the outputs come in a lower precision.
        mlvl_priors = self.prior_generator.grid_priors(featmap_sizes, dtype=torch.float32,
                                                       device=cls_scores[0].device)
        results_list = []
        for img_id, img_meta in enumerate(batch_img_metas):
            score_factor_list = (None if score_factors is None
                                 else select_single_mlvl(score_factors, img_id))
            # Heads that override _predict_by_feat_single without extras get none.
            extras = {} if not mlvl_extras else dict(extra_list={
                key: select_single_mlvl(levels, img_id) for key, levels in mlvl_extras.items()})
            results_list.append(self._predict_by_feat_single(
                cls_score_list=select_single_mlvl(cls_scores, img_id),
                bbox_pred_list=select_single_mlvl(bbox_preds, img_id),
                score_factor_list=score_factor_list,
                mlvl_priors=mlvl_priors,
                img_meta=img_meta,
                cfg=cfg,
                rescale=rescale,
                with_nms=with_nms,
                **extras))
        return results_list

    def _predict_by_feat_single(self,
                                cls_score_list: List[Tensor],
                                bbox_pred_list: List[Tensor],
                                score_factor_list: Optional[List[Tensor]],
                                mlvl_priors: List[Tensor],
                                img_meta: dict,
                                cfg: dict,
                                rescale: bool = False,
                                with_nms: bool = True,
                                extra_list: Optional[Dict[str, List[Tensor]]] = None
                                ) -> InstanceData:
        """One image: (A * C, H, W) scores, (A * D, H, W) box encodings and
        (A, H, W) score factors per level, with the level's priors (H*W*A, 4 or
        2+), and ``extra_list``'s (D, H, W) per-prior outputs per level, kept
        with the boxes; see the module docstring for the steps."""
        extra_list = extra_list or {}
        if {'bbox_pred', 'priors'} & set(extra_list):
            raise KeyError(f'{type(self).__name__}: extra per-prior outputs may not be named '
                           f"'bbox_pred' or 'priors', got {sorted(extra_list)}")
        nms_pre = cfg.get('nms_pre', -1)
        score_thr = cfg.get('score_thr', 0.0)
        encode_size = self.bbox_coder.encode_size
        mlvl_priors_kept, mlvl_preds, mlvl_scores, mlvl_labels, mlvl_factors = [], [], [], [], []
        mlvl_extras = {key: [] for key in extra_list}
        for level, (cls_score, bbox_pred, priors) in enumerate(
                zip(cls_score_list, bbox_pred_list, mlvl_priors)):
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, encode_size).float()
            scores = cls_score.permute(1, 2, 0).reshape(-1, self.cls_out_channels).float()
            scores = scores.sigmoid() if self.use_sigmoid_cls else scores.softmax(-1)[:, :-1]
            carried = {key: levels[level].permute(1, 2, 0).reshape(len(scores), -1)
                       for key, levels in extra_list.items()}
            scores, labels, keep_idxs, kept = filter_scores_and_topk(
                scores, score_thr, nms_pre, dict(carried, bbox_pred=bbox_pred, priors=priors))
            for key in extra_list:
                mlvl_extras[key].append(kept[key])
            mlvl_priors_kept.append(kept['priors'])
            mlvl_preds.append(kept['bbox_pred'])
            mlvl_scores.append(scores)
            mlvl_labels.append(labels)
            if score_factor_list is not None:
                factor = score_factor_list[level].permute(1, 2, 0).reshape(-1).float().sigmoid()
                mlvl_factors.append(factor[keep_idxs])
        results = InstanceData(
            bboxes=self.bbox_coder.decode(torch.cat(mlvl_priors_kept), torch.cat(mlvl_preds),
                                          max_shape=img_meta['img_shape'][:2]),
            scores=torch.cat(mlvl_scores), labels=torch.cat(mlvl_labels))
        for key, kept in mlvl_extras.items():
            results[key] = torch.cat(kept)
        if score_factor_list is not None:
            results.score_factors = torch.cat(mlvl_factors)
        return self._bbox_post_process(results, cfg, rescale=rescale, with_nms=with_nms,
                                       img_meta=img_meta)

    def _bbox_post_process(self,
                           results: InstanceData,
                           cfg: dict,
                           rescale: bool = False,
                           with_nms: bool = True,
                           img_meta: Optional[dict] = None) -> InstanceData:
        """Rescale, apply score factors, drop small boxes, NMS per class and
        keep ``max_per_img``.

        Args:
            results (InstanceData): ``bboxes`` (N, 4), ``scores`` (N,),
                ``labels`` (N,), optionally ``score_factors`` (N,).
            cfg (dict): ``min_bbox_size``, ``nms``, ``max_per_img``.
            rescale (bool): To the original image (needs ``img_meta``).
            with_nms (bool): Run NMS and ``max_per_img``.
            img_meta (dict, optional): ``scale_factor`` for ``rescale``.
        """
        if rescale:
            results.bboxes = bboxes_to_original(results.bboxes, img_meta)
        if 'score_factors' in results:
            results.scores = results.scores * results.pop('score_factors')
        results = filter_small_bboxes(results, cfg.get('min_bbox_size', -1))
        if with_nms:
            results = nms_and_limit(results, cfg, results.labels)
        return results


def filter_small_bboxes(results: InstanceData, min_bbox_size: float) -> InstanceData:
    """The results whose boxes are wider and taller than ``min_bbox_size``
    (all of them when it is negative)."""
    if min_bbox_size < 0:
        return results
    bboxes = results.bboxes
    wide = ((bboxes[:, 2] - bboxes[:, 0] > min_bbox_size)
            & (bboxes[:, 3] - bboxes[:, 1] > min_bbox_size))
    return results if wide.all() else results[wide]


def small_bboxes_suppressed_by_nms(results: InstanceData, cfg: dict,
                                   idxs_key: str) -> InstanceData:
    """:func:`filter_small_bboxes` then :func:`nms_and_limit`, the same
    boxes in the same order; off the CPU (see :func:`gathers_positives`) with
    hard NMS (``cfg['nms']['type'] == 'nms'``, ``iou_threshold < 1``), the
    small boxes are removed by the NMS itself, which the host waits for
    anyway, instead of by a test and a boolean index before it.

    Each small box becomes a copy of the best-scoring wide box (and joins
    its NMS group) with score ``-inf``: whichever box suppresses that best
    box, or the box itself, suppresses the copy too (IoU 1), and a
    suppressed copy suppresses nothing. Only when no box is wide does one
    copy survive; that case (one survivor) is read back and emptied.

    Args:
        results (InstanceData): ``bboxes`` (N, 4), ``scores`` (N,), ...
        cfg (dict): ``min_bbox_size``, ``nms``, ``max_per_img``.
        idxs_key (str): The field of ``results`` holding each box's NMS
            group (``'labels'``, or an RPN's ``'level_ids'``).
    """
    min_bbox_size = cfg.get('min_bbox_size', -1)
    nms_cfg = cfg.get('nms') or {}
    if (min_bbox_size < 0 or gathers_positives(results.bboxes) or len(results) == 0
            or nms_cfg.get('type', 'nms') != 'nms' or nms_cfg.get('iou_threshold', 1) >= 1):
        results = filter_small_bboxes(results, min_bbox_size)
        return nms_and_limit(results, cfg, results.get(idxs_key))
    bboxes, scores, idxs = results.bboxes, results.scores, results.get(idxs_key)
    small = ((bboxes[:, 2] - bboxes[:, 0] <= min_bbox_size)
             | (bboxes[:, 3] - bboxes[:, 1] <= min_bbox_size))
    # (1,), not a 0-dim index: indexing by a 0-dim tensor reads it back to the host.
    best = torch.where(small, float('-inf'), scores).argmax(dim=0, keepdim=True)
    stand_in = results.clone()
    stand_in.bboxes = torch.where(small[:, None], bboxes[best], bboxes)
    stand_in.scores = torch.where(small, float('-inf'), scores)
    kept = nms_and_limit(stand_in, cfg, torch.where(small, idxs[best], idxs))
    if len(kept) == 1 and not bool(kept.scores.isfinite().all()):
        return kept[:0]
    return kept


def nms_and_limit(results: InstanceData, cfg: dict, idxs: Tensor) -> InstanceData:
    """NMS (``cfg['nms']``) within the groups ``idxs`` (classes, or an RPN's
    levels), then the ``cfg['max_per_img']`` best. A negative
    ``max_per_img`` (or none) keeps every box that survives NMS; without
    ``nms`` the boxes are only sorted by score.

    Scores come from the NMS output, so Soft-NMS's decayed scores are kept.
    """
    if results.bboxes.numel() == 0:
        return results
    dets, keep = batched_nms(results.bboxes, results.scores, idxs, cfg.get('nms'))
    scores = dets[:, -1]
    max_per_img = cfg.get('max_per_img', -1)
    if max_per_img >= 0:
        keep, scores = keep[:max_per_img], scores[:max_per_img]
    results = results[keep]
    results.scores = scores
    return results
