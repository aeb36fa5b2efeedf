"""Non-maximum suppression driven by MMDetection's ``nms`` config.

MMDetection heads pass ``test_cfg.nms`` (``dict(type='nms', iou_threshold=0.5)``,
``dict(type='soft_nms', iou_threshold=0.3, sigma=0.5, min_score=1e-3, method='linear')``, with
optional ``class_agnostic``, ``split_thr``, ``max_num``, ``score_threshold``) to mmcv's compiled
``batched_nms``. These functions take the same config and give the same results on top of
torchvision's ``nms``; Soft-NMS, which torchvision lacks, follows mmcv's CPU algorithm step for
step (including the order in which it drops boxes) so that ties resolve as they do there.
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor
from torchvision.ops import nms as _tv_nms

from detlab.structures.errors import AssertionValueError

NMS_TYPES = ('nms', 'soft_nms')
SOFT_NMS_METHODS = ('naive', 'linear', 'gaussian')


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float, offset: int = 0,
        score_threshold: float = 0, max_num: int = -1) -> Tuple[Tensor, Tensor]:
    """Hard NMS with mmcv's signature.

    Args:
        boxes (Tensor): (N, 4) x1, y1, x2, y2.
        scores (Tensor): (N,).
        iou_threshold (float): a box overlapping a kept one by more than this is dropped.
        offset (int): mmcv's ``+1`` pixel convention; only 0 (MMDetection 3.x) is supported.
        score_threshold (float): boxes scoring at or below it are dropped first (when > 0).
        max_num (int): keep at most this many (all when <= 0).

    Returns:
        tuple: ``dets`` (K, 5) boxes and scores, ``keep`` (K,) indices into the input, by
        descending score.
    """
    if offset != 0:
        raise AssertionValueError(f'nms offset={offset} is not supported: detlab runs '
                                  'torchvision.ops.nms, which measures boxes as x2 - x1 '
                                  '(offset=0, MMDetection 3.x)')
    candidates = None
    if score_threshold > 0:
        candidates = (scores > score_threshold).nonzero(as_tuple=True)[0]
        boxes, scores = boxes[candidates], scores[candidates]
    keep = _tv_nms(boxes.float(), scores.float(), float(iou_threshold))
    if max_num > 0:
        keep = keep[:max_num]
    dets = torch.cat([boxes[keep], scores[keep, None]], dim=1)
    if candidates is not None:
        keep = candidates[keep]
    return dets, keep


def soft_nms(boxes: Tensor, scores: Tensor, iou_threshold: float = 0.3, sigma: float = 0.5,
             min_score: float = 1e-3, method: str = 'linear',
             offset: int = 0) -> Tuple[Tensor, Tensor]:
    """Soft-NMS (Bodla et al. 2017) as mmcv's CPU kernel computes it.

    Each round takes the highest-scoring remaining box (the first one on ties) and decays the
    scores of the rest by their IoU with it: ``1 - iou`` above ``iou_threshold`` ('linear'),
    ``exp(-iou^2 / sigma)`` ('gaussian') or 0 above the threshold ('naive'). A box whose score
    falls below ``min_score`` is dropped, its slot filled by the last remaining box.

    Args:
        boxes (Tensor): (N, 4) x1, y1, x2, y2.
        scores (Tensor): (N,).

    Returns:
        tuple: ``dets`` (K, 5) boxes with their decayed scores, in the order they were kept,
        and ``keep`` (K,) their indices into the input.
    """
    if method not in SOFT_NMS_METHODS:
        raise AssertionValueError(f"soft_nms method={method!r} is not one of {SOFT_NMS_METHODS}")
    if offset not in (0, 1):
        raise AssertionValueError(f'soft_nms offset={offset} must be 0 or 1')
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in
                      boxes.detach().cpu().float().numpy().T.copy())
    score = scores.detach().cpu().float().numpy().copy()
    area = (x2 - x1 + np.float32(offset)) * (y2 - y1 + np.float32(offset))
    index = np.arange(len(score))
    columns = (x1, y1, x2, y2, score, area, index)
    kept_scores = []
    alive, i = len(score), 0
    while i < alive:
        best = i + int(np.argmax(score[i:alive]))
        for col in columns:
            col[i], col[best] = col[best], col[i]
        kept_scores.append(score[i])
        rest = slice(i + 1, alive)
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest])
                       + np.float32(offset))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
                       + np.float32(offset))
        inter = w * h
        iou = inter / (area[i] + area[rest] - inter)
        if method == 'gaussian':
            weight = np.exp(-(iou * iou) / np.float32(sigma))
        else:
            over = iou >= np.float32(iou_threshold)
            decayed = 1 - iou if method == 'linear' else np.zeros_like(iou)
            weight = np.where(over, decayed, np.float32(1))
        score[rest] *= weight.astype(np.float32)
        alive = _drop_low_scores(columns, score, i + 1, alive, min_score)
        i += 1
    keep = torch.from_numpy(index[:i].copy()).to(boxes.device)
    dets = torch.cat([boxes[keep], scores.new_tensor(np.array(kept_scores))[:, None]], dim=1)
    return dets, keep


def _drop_low_scores(columns, score: np.ndarray, start: int, alive: int, min_score: float) -> int:
    """Remove slots in [start, alive) scoring under ``min_score`` as mmcv does: each hole, in
    ascending order, takes the last remaining box that is itself kept. Returns the new count."""
    for hole in np.flatnonzero(score[start:alive] < min_score) + start:
        if hole >= alive:
            break
        alive -= 1
        while alive > hole and score[alive] < min_score:
            alive -= 1
        if alive > hole:
            for col in columns:
                col[hole] = col[alive]
    return alive


_NMS_OPS = {'nms': nms, 'soft_nms': soft_nms}


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, nms_cfg: Optional[Dict],
                class_agnostic: bool = False) -> Tuple[Tensor, Tensor]:
    """NMS within each class (or across classes), configured as in MMDetection.

    Boxes of different classes are moved apart by a per-class offset so one NMS call never lets
    them suppress each other; with ``class_agnostic`` (argument or config key) they compete.
    More than ``split_thr`` boxes (default 10000) run class by class instead, then sort.

    Args:
        boxes (Tensor): (N, 4) x1, y1, x2, y2.
        scores (Tensor): (N,).
        idxs (Tensor): (N,) class of each box.
        nms_cfg (dict | None): ``type`` ('nms' or 'soft_nms') and the op's keywords, plus
            ``class_agnostic``, ``split_thr``, ``max_num``. ``None`` only sorts by score.

    Returns:
        tuple: ``dets`` (K, 5) boxes and (for soft-NMS, decayed) scores, by descending score,
        and ``keep`` (K,) indices into the input.
    """
    if nms_cfg is None:
        scores, order = scores.sort(descending=True)
        return torch.cat([boxes[order], scores[:, None]], dim=-1), order
    cfg = dict(nms_cfg)
    class_agnostic = cfg.pop('class_agnostic', class_agnostic)
    nms_type = cfg.pop('type', 'nms')
    if nms_type not in _NMS_OPS:
        raise AssertionValueError(f"test_cfg.nms.type={nms_type!r} is not supported; valid types: "
                                  f"{NMS_TYPES}")
    nms_op = _NMS_OPS[nms_type]
    split_thr = cfg.pop('split_thr', 10000)
    if class_agnostic:
        boxes_for_nms = boxes
    else:
        # + 1 as a Python number: a tensor made on the host and copied to a GPU
        # would make the host wait for the device's queue.
        offsets = idxs.to(boxes) * (boxes.max() + 1)
        boxes_for_nms = boxes + offsets[:, None]
    if boxes_for_nms.shape[0] < split_thr:
        dets, keep = _call(nms_op, nms_type, boxes_for_nms, scores, cfg)
        return torch.cat([boxes[keep], dets[:, -1:]], dim=-1), keep
    max_num = cfg.pop('max_num', -1)
    kept = scores.new_zeros(scores.shape, dtype=torch.bool)
    scores_after = scores.new_zeros(scores.shape)
    for class_id in torch.unique(idxs):
        members = (idxs == class_id).nonzero(as_tuple=True)[0]
        dets, keep = _call(nms_op, nms_type, boxes_for_nms[members], scores[members], cfg)
        kept[members[keep]] = True
        scores_after[members[keep]] = dets[:, -1]
    keep = kept.nonzero(as_tuple=True)[0]
    kept_scores, order = scores_after[keep].sort(descending=True)
    keep = keep[order]
    if max_num > 0:
        keep, kept_scores = keep[:max_num], kept_scores[:max_num]
    return torch.cat([boxes[keep], kept_scores[:, None]], dim=-1), keep


def _call(nms_op, nms_type: str, boxes: Tensor, scores: Tensor, cfg: dict):
    try:
        return nms_op(boxes, scores, **cfg)
    except TypeError as error:
        raise AssertionValueError(f'test_cfg.nms has keys {sorted(cfg)} that {nms_type!r} does '
                                  f'not take ({error})') from None


def multiclass_nms(multi_bboxes: Tensor, multi_scores: Tensor, score_thr: float,
                   nms_cfg: Dict, max_num: int = -1, score_factors: Optional[Tensor] = None,
                   return_inds: bool = False,
                   box_dim: int = 4) -> Union[Tuple[Tensor, Tensor], Tuple[Tensor, Tensor, Tensor]]:
    """Per-class NMS over class-specific (or shared) boxes, as MMDetection's ``multiclass_nms``.

    Args:
        multi_bboxes (Tensor): (N, C * box_dim) class-specific boxes or (N, box_dim) shared ones.
        multi_scores (Tensor): (N, C + 1); the last column (background) is ignored.
        score_thr (float): (box, class) pairs scoring at or below it are dropped before NMS.
        nms_cfg (dict): as for :func:`batched_nms`.
        max_num (int): keep at most this many after NMS (all when <= 0).
        score_factors (Tensor, optional): (N,) factors multiplying the scores after the
            threshold test (e.g. centerness).
        return_inds (bool): also return each kept pair's index into the flattened (N * C) grid.

    Returns:
        tuple: ``dets`` (K, box_dim + 1), ``labels`` (K,) and, with ``return_inds``, ``inds`` (K,).
    """
    num_boxes, num_classes = multi_scores.size(0), multi_scores.size(1) - 1
    if multi_bboxes.shape[1] > box_dim:
        bboxes = multi_bboxes.view(num_boxes, -1, box_dim)
    else:
        bboxes = multi_bboxes[:, None].expand(num_boxes, num_classes, box_dim)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device)
    labels = labels.view(1, -1).expand_as(scores).reshape(-1)
    bboxes = bboxes.reshape(-1, box_dim)
    scores = scores.reshape(-1)
    valid = scores > score_thr
    if score_factors is not None:
        scores = scores * score_factors.view(-1, 1).expand(num_boxes, num_classes).reshape(-1)
    inds = valid.nonzero(as_tuple=True)[0]
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]
    if bboxes.numel() == 0:
        dets = torch.cat([bboxes, scores[:, None]], dim=-1)
        return (dets, labels, inds) if return_inds else (dets, labels)
    dets, keep = batched_nms(bboxes, scores, labels, nms_cfg)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return (dets, labels[keep], inds[keep]) if return_inds else (dets, labels[keep])
