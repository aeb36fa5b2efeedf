"""A vectorised COCOeval for boxes: pycocotools' numbers, without its Python loops.

It reproduces ``COCOeval.evaluate`` + ``accumulate`` + ``summarize`` for
``iouType='bbox'`` exactly, quirks included:

* IoU is computed as pycocotools' C ``bbIou`` on x, y, w, h in float64; a
  crowd gt's union is the detection's own area.
* Detections of an (image, category) are ranked by score with a stable sort
  and cut to the largest max-dets setting (per category when ``use_cats``).
* Each detection, in rank order, takes the unmatched gt with the highest IoU
  >= the threshold (a crowd gt can be taken again); regular gts win over
  ignored ones (crowd, or area outside the range); among equal IoUs the gt
  listed last in the file wins.
* A detection matched to an ignored gt, or unmatched and outside the area
  range, is ignored; a gt whose annotation id is 0 counts as no match.
* Precision is made monotone and sampled at 101 recall thresholds; the
  detections of all images are ranked by score with a stable sort (ties keep
  image order); ``stats[0]`` uses max-dets 100 whatever the settings.

Matching runs one detection rank at a time for every (image, category)
group at once, and for every IoU threshold and area range at once.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO

from .coco_format import DetectionArrays
from .coco_summary import AREA_RANGES, RECALL_THRS, CocoEvalResult, summarize

#: pycocotools caps each IoU threshold just below 1.
_MAX_IOU_THR = 1 - 1e-10


def _box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' ``bbIou`` for aligned pairs, in its float64 operation order.

    Args:
        dt (np.ndarray): (P, 4) x, y, w, h of detections.
        gt (np.ndarray): (P, 4) x, y, w, h of the gt boxes paired with them.
        crowd (np.ndarray): (P,) bool, the gt is a crowd region.

    Returns:
        np.ndarray: (P,) IoU (intersection over the detection's area for crowds).
    """
    width = np.minimum(dt[:, 2] + dt[:, 0], gt[:, 2] + gt[:, 0]) - np.maximum(dt[:, 0], gt[:, 0])
    height = np.minimum(dt[:, 3] + dt[:, 1], gt[:, 3] + gt[:, 1]) - np.maximum(dt[:, 1], gt[:, 1])
    overlaps = (width > 0) & (height > 0)
    inter = width * height
    dt_area = dt[:, 2] * dt[:, 3]
    union = np.where(crowd, dt_area, dt_area + gt[:, 2] * gt[:, 3] - inter)
    return np.divide(inter, union, out=np.zeros(len(dt)), where=overlaps)


def _ground_truth(coco_gt: COCO, img_index: Dict[int, int],
                  cat_index: Dict[int, int]) -> Dict[str, np.ndarray]:
    """The evaluated gt boxes as arrays, in file order."""
    anns = [ann for ann in coco_gt.dataset.get('annotations', [])
            if ann['image_id'] in img_index and ann['category_id'] in cat_index]
    return dict(
        img=np.array([img_index[a['image_id']] for a in anns], dtype=np.int64),
        cat=np.array([cat_index[a['category_id']] for a in anns], dtype=np.int64),
        bboxes=np.array([a['bbox'] for a in anns], dtype=np.float64).reshape(-1, 4),
        area=np.array([a['area'] for a in anns], dtype=np.float64),
        crowd=np.array([bool(a.get('iscrowd', 0)) for a in anns], dtype=bool),
        ann_id=np.array([a['id'] for a in anns], dtype=np.int64))


def _rank_in_group(groups: np.ndarray) -> np.ndarray:
    """Position of each element within its run of equal (sorted) group keys."""
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    lengths = np.diff(np.r_[starts, len(groups)])
    return np.arange(len(groups)) - np.repeat(starts, lengths)


def fast_coco_eval(coco_gt: COCO,
                   detections: DetectionArrays,
                   cat_ids: Sequence[int],
                   img_ids: Optional[Sequence[int]] = None,
                   iou_thrs: Optional[Sequence[float]] = None,
                   max_dets: Sequence[int] = (100, 300, 1000),
                   use_cats: bool = True) -> CocoEvalResult:
    """COCO box evaluation with pycocotools' results, vectorised.

    Args:
        coco_gt (COCO): Ground truth (``area``, ``iscrowd`` and ``id`` of
            each annotation are used as pycocotools uses them).
        detections (DetectionArrays): The detections, in results-file order.
        cat_ids (Sequence[int]): Categories to evaluate.
        img_ids (Sequence[int], optional): Images to evaluate; all when None.
        iou_thrs (Sequence[float], optional): 0.50:0.05:0.95 when None.
        max_dets (Sequence[int]): Three max-detections settings, ascending.
        use_cats (bool): False pools all categories (proposal recall).

    Returns:
        CocoEvalResult: ``stats``, ``eval`` and the summary text.
    """
    iou_thrs = np.linspace(0.5, 0.95, 10) if iou_thrs is None else np.asarray(
        iou_thrs, dtype=np.float64).reshape(-1)
    max_dets = sorted(int(m) for m in max_dets)
    eval_imgs = np.unique(np.asarray(coco_gt.getImgIds() if img_ids is None else img_ids))
    eval_cats = np.unique(np.asarray(cat_ids))
    img_index = {int(img): i for i, img in enumerate(eval_imgs)}
    cat_index = {int(cat): k for k, cat in enumerate(eval_cats)}
    # Without categories pycocotools pools the listed categories per image, in id order.
    num_cats = len(eval_cats) if use_cats else 1

    # Without categories, pycocotools lists an image's boxes category by category
    # in the order cat_ids gives them (it sorts cat_ids only when use_cats).
    listed_at = {}
    for position, cat in enumerate(cat_ids):
        listed_at.setdefault(int(cat), position)
    cat_rank = np.array([k if use_cats else listed_at[int(cat)]
                         for k, cat in enumerate(eval_cats)], dtype=np.int64)

    gt = _ground_truth(coco_gt, img_index, cat_index)
    gt = {key: value[np.lexsort((cat_rank[gt['cat']], gt['img']))] for key, value in gt.items()}
    gt['cat'] = gt['cat'] if use_cats else np.zeros_like(gt['cat'])
    gt_group = gt['img'] * num_cats + gt['cat']

    keep = np.isin(detections.image_ids, eval_imgs) & np.isin(detections.category_ids, eval_cats)
    det_img = np.searchsorted(eval_imgs, detections.image_ids[keep])
    det_cat = np.searchsorted(eval_cats, detections.category_ids[keep])
    det_scores = detections.scores[keep]
    det_boxes = detections.bboxes[keep]
    # Stable: equal scores keep category order, then file order.
    det_order = np.lexsort((cat_rank[det_cat], -det_scores,
                            det_cat if use_cats else np.zeros_like(det_cat), det_img))
    det_cat = det_cat if use_cats else np.zeros_like(det_cat)
    det_group = (det_img * num_cats + det_cat)[det_order]
    det_rank = _rank_in_group(det_group)
    kept = det_rank < max_dets[-1]
    det_order, det_group, det_rank = det_order[kept], det_group[kept], det_rank[kept]
    det = dict(img=det_img[det_order], cat=det_cat[det_order], score=det_scores[det_order],
               bboxes=det_boxes[det_order], group=det_group, rank=det_rank)
    det['area'] = det['bboxes'][:, 2] * det['bboxes'][:, 3]

    matched, det_ignored = _match(det, gt, gt_group, iou_thrs)
    area_lo, area_hi = AREA_RANGES[:, 0], AREA_RANGES[:, 1]
    det_outside = (det['area'][None] < area_lo[:, None]) | (det['area'][None] > area_hi[:, None])
    det_ignored |= ~matched & det_outside[None]  # (T, A, D)
    gt_ignored = gt['crowd'][None] | (gt['area'][None] < area_lo[:, None]) | (
        gt['area'][None] > area_hi[:, None])  # (A, G)

    precision, recall, scores = _accumulate(det, matched, det_ignored, gt['cat'], gt_ignored,
                                            num_cats, iou_thrs, max_dets)
    stats, summary = summarize(precision, recall, iou_thrs, max_dets)
    return CocoEvalResult(stats=stats, summary=summary,
                          eval=dict(precision=precision, recall=recall, scores=scores))


def _match(det: Dict[str, np.ndarray], gt: Dict[str, np.ndarray], gt_group: np.ndarray,
           iou_thrs: np.ndarray):
    """Greedy matching of every group at once, one detection rank at a time.

    Returns:
        tuple: ``matched`` (T, A, D) bool, matched to a gt whose annotation
        id is not 0 (pycocotools stores the id and tests it for truth), and
        ``det_ignored`` (T, A, D) bool, matched to an ignored gt.
    """
    num_thrs, num_areas, num_dets = len(iou_thrs), len(AREA_RANGES), len(det['rank'])
    # Each detection pairs with every gt of its group: gts [first, last).
    first = np.searchsorted(gt_group, det['group'], side='left')
    last = np.searchsorted(gt_group, det['group'], side='right')
    counts = last - first
    pair_det = np.repeat(np.arange(num_dets), counts)
    pair_gt = np.repeat(first - np.cumsum(np.r_[0, counts[:-1]]), counts) + np.arange(
        counts.sum())
    ious = _box_iou(det['bboxes'][pair_det], gt['bboxes'][pair_gt], gt['crowd'][pair_gt])
    area_lo, area_hi = AREA_RANGES[:, 0], AREA_RANGES[:, 1]
    gt_area = gt['area'][pair_gt]
    pair_regular = ~gt['crowd'][pair_gt][None] & (gt_area[None] >= area_lo[:, None]) & (
        gt_area[None] <= area_hi[:, None])  # (A, P)
    # Priority of a pair within its detection: regular gt, then IoU, then file order.
    priority = np.empty((num_areas, len(pair_det)), dtype=np.int64)
    pair_at = np.empty_like(priority)
    for area in range(num_areas):
        order = np.lexsort((pair_gt, ious, pair_regular[area], pair_det))
        priority[area, order] = np.arange(len(order))
        pair_at[area] = order

    gt_taken = np.zeros((num_thrs, num_areas, len(gt_group)), dtype=bool)
    matched = np.zeros((num_thrs, num_areas, num_dets), dtype=bool)
    det_ignored = np.zeros((num_thrs, num_areas, num_dets), dtype=bool)
    thresholds = np.minimum(iou_thrs, _MAX_IOU_THR)[:, None, None]
    pair_rank = det['rank'][pair_det]
    by_rank = np.argsort(pair_rank, kind='stable')  # pairs of one rank, grouped by detection
    bounds = np.searchsorted(pair_rank[by_rank], np.arange(pair_rank.max(initial=-1) + 2))
    for rank in range(len(bounds) - 1):
        pairs = by_rank[bounds[rank]:bounds[rank + 1]]
        if len(pairs) == 0:
            continue
        gts = pair_gt[pairs]
        blocked = gt_taken[:, :, gts] & ~gt['crowd'][gts]
        valid = (ious[pairs] >= thresholds) & ~blocked  # (T, A, P)
        key = np.where(valid, priority[:, pairs][None], -1)
        starts = np.r_[0, np.flatnonzero(np.diff(pair_det[pairs])) + 1]
        best = np.maximum.reduceat(key, starts, axis=2)  # (T, A, D_rank)
        dets = pair_det[pairs][starts]
        t_hit, a_hit, d_hit = np.nonzero(best >= 0)
        winner = pair_at[a_hit, best[t_hit, a_hit, d_hit]]
        won_gt = pair_gt[winner]
        gt_taken[t_hit, a_hit, won_gt] = True
        matched[t_hit, a_hit, dets[d_hit]] = gt['ann_id'][won_gt] != 0
        det_ignored[t_hit, a_hit, dets[d_hit]] = ~pair_regular[a_hit, winner]
    return matched, det_ignored


def _accumulate(det: Dict[str, np.ndarray], matched: np.ndarray, det_ignored: np.ndarray,
                gt_cat: np.ndarray, gt_ignored: np.ndarray, num_cats: int, iou_thrs: np.ndarray,
                max_dets: List[int]):
    """``COCOeval.accumulate``: precision/recall/scores arrays, -1 where undefined."""
    num_thrs, num_recalls = len(iou_thrs), len(RECALL_THRS)
    num_areas, num_max = len(AREA_RANGES), len(max_dets)
    precision = -np.ones((num_thrs, num_recalls, num_cats, num_areas, num_max))
    scores = -np.ones((num_thrs, num_recalls, num_cats, num_areas, num_max))
    recall = -np.ones((num_thrs, num_cats, num_areas, num_max))
    # Across images: by score (stable), ties in image order then rank order.
    order = np.lexsort((det['rank'], det['img'], -det['score'], det['cat']))
    cat_bounds = np.searchsorted(det['cat'][order], np.arange(num_cats + 1))
    positives = (~gt_ignored[:, None, :] & (gt_cat[None, None, :] ==
                                            np.arange(num_cats)[None, :, None])).sum(axis=2)
    for cat in range(num_cats):
        cat_dets = order[cat_bounds[cat]:cat_bounds[cat + 1]]
        areas = np.flatnonzero(positives[:, cat] > 0)
        if areas.size == 0:
            continue  # no counted gt: precision and recall stay -1
        num_pos = positives[areas, cat][None, :, None]  # (1, A', 1)
        cat_ranks = det['rank'][cat_dets]
        kept_before = -1
        for m, max_det in enumerate(max_dets):
            keep = cat_dets[cat_ranks < max_det]
            if len(keep) == kept_before:  # the same detections as the smaller setting
                for values in (precision, scores):
                    values[:, :, cat, areas, m] = values[:, :, cat, areas, m - 1]
                recall[:, cat, areas, m] = recall[:, cat, areas, m - 1]
                continue
            kept_before = len(keep)
            counted = ~det_ignored[:, areas][:, :, keep]  # (T, A', D_k)
            hit = matched[:, areas][:, :, keep]
            tp = np.cumsum(hit & counted, axis=2).astype(np.float64)
            fp = np.cumsum(~hit & counted, axis=2).astype(np.float64)
            rc = tp / num_pos
            pr = tp / (fp + tp + np.spacing(1))
            recall[:, cat, areas, m] = rc[:, :, -1] if len(keep) else 0
            pr = np.maximum.accumulate(pr[:, :, ::-1], axis=2)[:, :, ::-1]
            # One past the end samples 0, as pycocotools leaves unreached recalls.
            pr = np.concatenate([pr, np.zeros(pr.shape[:2] + (1, ))], axis=2)
            dt_scores = np.r_[det['score'][keep], 0.0]
            for t in range(num_thrs):
                for a, area in enumerate(areas):
                    at = np.searchsorted(rc[t, a], RECALL_THRS, side='left')
                    precision[t, :, cat, area, m] = pr[t, a, at]
                    scores[t, :, cat, area, m] = dt_scores[at]
    return precision, recall, scores
