"""PASCAL VOC style mAP: MMDetection's ``eval_map`` family, on numpy arrays.

Detections of a class are matched, in descending score order, to the gt box
each overlaps most (ignored gt boxes included): the first detection to claim
a regular gt box with IoU >= ``iou_thr`` is a true positive, later claimants
are false positives, and a detection whose best gt is ignored (``difficult``)
or outside the area range counts as neither.
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from detlab.structures.errors import AssertionValueError
from .bbox_overlaps import bbox_overlaps
from .class_names import get_classes
from .coco_eval import format_table

#: The two ways of integrating the precision-recall curve.
AP_MODES = ('area', '11points')
#: Recall levels of the 11-point interpolated AP (PASCAL VOC 2007).
ELEVEN_RECALLS = np.arange(0, 1 + 1e-3, 0.1)


def average_precision(recalls: np.ndarray, precisions: np.ndarray,
                      mode: str = 'area') -> Union[float, np.ndarray]:
    """Area under the precision-recall curve, for one or several scales.

    Args:
        recalls (np.ndarray): (num_dets,) or (num_scales, num_dets),
            non-decreasing along the last axis.
        precisions (np.ndarray): Same shape as ``recalls``.
        mode (str): ``'area'``: the area under the curve made monotonically
            non-increasing (VOC 2010+); ``'11points'``: the mean of the best
            precision at recall >= 0, 0.1, ..., 1 (VOC 2007).

    Returns:
        float | np.ndarray: the AP, or (num_scales,) float32 APs.
    """
    if mode not in AP_MODES:
        raise AssertionValueError(f'average_precision: mode={mode!r}, expected one of {AP_MODES}.')
    single = np.ndim(recalls) == 1
    recalls = np.atleast_2d(np.asarray(recalls))
    precisions = np.atleast_2d(np.asarray(precisions))
    if recalls.shape != precisions.shape:
        raise AssertionValueError(f'average_precision: recalls {recalls.shape} and precisions '
                                  f'{precisions.shape} must have the same shape.')
    num_scales = recalls.shape[0]
    if mode == 'area':
        zeros = np.zeros((num_scales, 1), dtype=recalls.dtype)
        mrec = np.hstack((zeros, recalls, np.ones_like(zeros)))
        # Precision envelope: the best precision at this recall or any higher one.
        mpre = np.maximum.accumulate(np.hstack((zeros, precisions, zeros))[:, ::-1],
                                     axis=1)[:, ::-1]
        steps = np.diff(mrec, axis=1)  # zero where recall does not change
        ap = (steps * mpre[:, 1:]).sum(axis=1).astype(np.float32)
    else:
        reached = recalls[:, None, :] >= ELEVEN_RECALLS[None, :, None]  # (S, 11, D)
        best = np.where(reached, precisions[:, None, :], 0).max(axis=2, initial=0)
        ap = (best.sum(axis=1) / len(ELEVEN_RECALLS)).astype(np.float32)
    return float(ap[0]) if single else ap


def _areas(bboxes: np.ndarray, extra_length: float) -> np.ndarray:
    return (bboxes[:, 2] - bboxes[:, 0] + extra_length) * (bboxes[:, 3] - bboxes[:, 1] +
                                                           extra_length)


def _in_ranges(areas: np.ndarray, area_ranges: Optional[Sequence[Tuple[float, float]]]
               ) -> np.ndarray:
    """(num_scales, N) bool: which areas fall in each [min, max) range (all when None)."""
    if area_ranges is None:
        return np.ones((1, len(areas)), dtype=bool)
    return np.stack([(areas >= low) & (areas < high) for low, high in area_ranges])


def tpfp_default(det_bboxes: np.ndarray,
                 gt_bboxes: np.ndarray,
                 gt_bboxes_ignore: Optional[np.ndarray] = None,
                 iou_thr: float = 0.5,
                 area_ranges: Optional[Sequence[Tuple[float, float]]] = None,
                 use_legacy_coordinate: bool = False,
                 **kwargs) -> Tuple[np.ndarray, np.ndarray]:
    """True and false positives of one image's detections of one class.

    Args:
        det_bboxes (np.ndarray): (M, 5) x1, y1, x2, y2, score.
        gt_bboxes (np.ndarray): (N, 4) regular gt boxes.
        gt_bboxes_ignore (np.ndarray, optional): (K, 4) ignored gt boxes.
        iou_thr (float): IoU needed for a match.
        area_ranges (list[tuple], optional): [(min_area, max_area), ...];
            the whole range when None.
        use_legacy_coordinate (bool): Widths and heights as ``x2 - x1 + 1``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``tp`` and ``fp``, each (num_scales,
        M) float32 of 0/1, in the order of ``det_bboxes``.
    """
    extra_length = 1.0 if use_legacy_coordinate else 0.0
    det_bboxes = np.asarray(det_bboxes, dtype=np.float32).reshape(-1, 5)
    regular = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 4)
    ignored = (np.zeros((0, 4), np.float32) if gt_bboxes_ignore is None else
               np.asarray(gt_bboxes_ignore, dtype=np.float32).reshape(-1, 4))
    all_gts = np.vstack((regular, ignored))
    gt_is_ignored = np.arange(len(all_gts)) >= len(regular)
    det_in_range = _in_ranges(_areas(det_bboxes, extra_length), area_ranges)
    num_scales, num_dets = det_in_range.shape
    tp = np.zeros((num_scales, num_dets), dtype=np.float32)
    fp = np.zeros((num_scales, num_dets), dtype=np.float32)
    if len(all_gts) == 0:
        fp[det_in_range] = 1
        return tp, fp
    ious = bbox_overlaps(det_bboxes[:, :4], all_gts, use_legacy_coordinate=use_legacy_coordinate)
    best_gt = ious.argmax(axis=1)
    hit = ious.max(axis=1) >= iou_thr
    # Stable: among equal scores the earlier detection claims the gt first.
    order = np.argsort(-det_bboxes[:, 4], kind='stable')
    gt_in_range = _in_ranges(_areas(all_gts, extra_length), area_ranges)
    for scale in range(num_scales):
        countable = ~gt_is_ignored & gt_in_range[scale]
        claims = order[hit[order] & countable[best_gt[order]]]
        _, first = np.unique(best_gt[claims], return_index=True)
        winners = np.zeros(num_dets, dtype=bool)
        winners[claims[first]] = True
        tp[scale, winners] = 1
        claimed = np.zeros(num_dets, dtype=bool)
        claimed[claims] = True
        fp[scale, claimed & ~winners] = 1
        fp[scale, ~hit & det_in_range[scale]] = 1
    return tp, fp


def get_cls_results(det_results: Sequence[Sequence[np.ndarray]], annotations: Sequence[dict],
                    class_id: int) -> Tuple[List[np.ndarray], List[np.ndarray], List[np.ndarray]]:
    """One class's detections, gt boxes and ignored gt boxes, per image."""
    cls_dets = [np.asarray(img_res[class_id]).reshape(-1, 5) for img_res in det_results]
    cls_gts, cls_gts_ignore = [], []
    for ann in annotations:
        cls_gts.append(np.asarray(ann['bboxes']).reshape(-1, 4)[ann['labels'] == class_id])
        if ann.get('labels_ignore') is not None:
            ignore = np.asarray(ann['bboxes_ignore']).reshape(-1, 4)
            cls_gts_ignore.append(ignore[ann['labels_ignore'] == class_id])
        else:
            cls_gts_ignore.append(np.zeros((0, 4), dtype=np.float32))
    return cls_dets, cls_gts, cls_gts_ignore


def eval_map(det_results: Sequence[Sequence[np.ndarray]],
             annotations: Sequence[dict],
             scale_ranges: Optional[Sequence[Tuple[float, float]]] = None,
             iou_thr: float = 0.5,
             ioa_thr: Optional[float] = None,
             dataset: Optional[Union[str, Sequence[str]]] = None,
             logger=None,
             tpfp_fn=None,
             nproc: int = 4,
             use_legacy_coordinate: bool = False,
             use_group_of: bool = False,
             eval_mode: str = 'area') -> Tuple[Union[float, List[float]], List[dict]]:
    """mAP of a dataset, as MMDetection's ``eval_map`` (VOC / default matching).

    Args:
        det_results (list[list[np.ndarray]]): Per image, per class, an
            (M, 5) array of x1, y1, x2, y2, score.
        annotations (list[dict]): Per image: ``bboxes`` (N, 4), ``labels``
            (N,), optionally ``bboxes_ignore`` (K, 4) and ``labels_ignore`` (K,).
        scale_ranges (list[tuple], optional): [(min, max), ...] box sizes;
            area ranges are their squares. One AP per range when given.
        iou_thr (float): IoU needed for a true positive.
        ioa_thr (float, optional): Must be None: MMDetection's intersection-over-
            area threshold for Open Images' group-of boxes, which detlab does not
            evaluate. Kept so positional calls line up with MMDetection's.
        dataset (str | list[str], optional): Names for the summary table: a
            dataset name (``'voc'``, ``'coco'``) or the class names.
        logger: Where to print the summary (``'silent'`` for nowhere).
        tpfp_fn (callable, optional): Replaces :func:`tpfp_default`.
        nproc (int): Accepted for MMDetection's signature; detlab computes in
            this process (matching is vectorised per image and class).
        use_legacy_coordinate (bool): Widths as ``x2 - x1 + 1`` (VOC devkit).
        use_group_of (bool): Must be False (Open Images' group-of matching, see
            ``ioa_thr``).
        eval_mode (str): ``'area'`` or ``'11points'``.

    Returns:
        tuple: mAP (a float, or one per scale range) and a list with one dict
        per class: ``num_gts``, ``num_dets``, ``recall``, ``precision`` (the
        PR curve over the class's detections in score order) and ``ap``.
    """
    if len(det_results) != len(annotations):
        raise AssertionValueError(f'eval_map: {len(det_results)} detection results but '
                                  f'{len(annotations)} annotations; give one of each per image.')
    if eval_mode not in AP_MODES:
        raise AssertionValueError(f'eval_map: eval_mode={eval_mode!r}, expected one of {AP_MODES}.')
    if nproc < 1:
        raise AssertionValueError(f'eval_map: nproc must be at least 1, got {nproc}.')
    if ioa_thr is not None or use_group_of:
        raise AssertionValueError(
            f'eval_map: ioa_thr={ioa_thr!r}, use_group_of={use_group_of!r} ask for Open Images '
            "group-of matching, which detlab does not have; leave them at None and False")
    tpfp_fn = tpfp_default if tpfp_fn is None else tpfp_fn
    extra_length = 1.0 if use_legacy_coordinate else 0.0
    area_ranges = (None if scale_ranges is None else
                   [(low**2, high**2) for low, high in scale_ranges])
    num_classes = len(det_results[0]) if det_results else 0
    eval_results = []
    for class_id in range(num_classes):
        cls_dets, cls_gts, cls_gts_ignore = get_cls_results(det_results, annotations, class_id)
        tpfp = [tpfp_fn(dets, gts, ignore, iou_thr, area_ranges, use_legacy_coordinate)
                for dets, gts, ignore in zip(cls_dets, cls_gts, cls_gts_ignore)]
        num_gts = sum(_in_ranges(_areas(gts, extra_length), area_ranges).sum(axis=1)
                      for gts in cls_gts)
        dets = np.vstack(cls_dets)
        order = np.argsort(-dets[:, 4], kind='stable')
        tp = np.cumsum(np.hstack([t for t, _ in tpfp])[:, order], axis=1)
        fp = np.cumsum(np.hstack([f for _, f in tpfp])[:, order], axis=1)
        eps = np.finfo(np.float32).eps
        recalls = tp / np.maximum(num_gts[:, None], eps)
        precisions = tp / np.maximum(tp + fp, eps)
        if scale_ranges is None:
            recalls, precisions, num_gts = recalls[0], precisions[0], int(num_gts[0])
        eval_results.append(dict(num_gts=num_gts, num_dets=len(dets), recall=recalls,
                                 precision=precisions,
                                 ap=average_precision(recalls, precisions, eval_mode)))
    mean_ap = _mean_ap(eval_results, scale_ranges is not None)
    print_map_summary(mean_ap, eval_results, dataset, area_ranges, logger=logger)
    return mean_ap, eval_results


def _mean_ap(eval_results: List[dict], per_scale: bool) -> Union[float, List[float]]:
    """Mean AP over the classes that have ground truth (0 when none has)."""
    if not eval_results:
        return [] if per_scale else 0.0
    aps = np.array([np.atleast_1d(r['ap']) for r in eval_results])  # (K, S)
    has_gt = np.array([np.atleast_1d(r['num_gts']) for r in eval_results]) > 0
    means = [float(aps[has_gt[:, s], s].mean()) if has_gt[:, s].any() else 0.0
             for s in range(aps.shape[1])]
    return means if per_scale else means[0]


def print_map_summary(mean_ap: Union[float, List[float]],
                      results: List[dict],
                      dataset: Optional[Union[str, Sequence[str]]] = None,
                      scale_ranges: Optional[Sequence[Tuple[float, float]]] = None,
                      logger=None) -> None:
    """Log a table of gts, dets, recall and AP per class, and the mAP.

    Args:
        mean_ap (float | list[float]): From :func:`eval_map`.
        results (list[dict]): From :func:`eval_map`.
        dataset (str | list[str], optional): Dataset name or class names.
        scale_ranges (list[tuple], optional): The area ranges evaluated.
        logger: ``print_log``'s logger; ``'silent'`` prints nothing.
    """
    if logger == 'silent' or not results:
        return
    if dataset is None:
        names: Sequence[str] = [str(i) for i in range(len(results))]
    elif isinstance(dataset, str):
        names = get_classes(dataset)
    else:
        names = dataset
    mean_aps = mean_ap if isinstance(mean_ap, list) else [mean_ap]
    for scale, scale_map in enumerate(mean_aps):
        rows: List[List[object]] = []
        for name, result in zip(names, results):
            recall = np.atleast_2d(result['recall'])
            final_recall = recall[scale, -1] if recall.size else 0.0
            rows.append([name, np.atleast_1d(result['num_gts'])[scale], result['num_dets'],
                         f'{final_recall:.3f}', f'{np.atleast_1d(result["ap"])[scale]:.3f}'])
        rows.append(['mAP', '', '', '', f'{scale_map:.3f}'])
        if scale_ranges is not None:
            print_log(f'Scale range {scale_ranges[scale]}', logger=logger)
        print_log('\n' + format_table(['class', 'gts', 'dets', 'recall', 'ap'], rows),
                  logger=logger)
