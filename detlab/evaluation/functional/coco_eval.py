"""COCO box AP (pycocotools' COCOeval or detlab's vectorised twin), mask AP
(pycocotools' COCOeval) and their mmdet names.

``COCOeval.eval['precision']`` has shape (T, R, K, A, M): IoU thresholds,
recall thresholds, categories, area ranges (all, small, medium, large) and
max-detections settings; entries are -1 where a category has no ground truth.
"""
import contextlib
import io
from typing import Dict, List, Optional, Sequence

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .coco_format import DetectionArrays, check_image_ids, load_detections
from .coco_summary import CocoEvalResult
from .fast_coco_eval import fast_coco_eval

#: COCO's default IoU thresholds 0.50:0.05:0.95.
COCO_IOU_THRS = np.linspace(0.5, 0.95, 10)
#: COCO's default max detections per image for recall, AP uses the last one.
COCO_MAX_DETS = (100, 300, 1000)
#: ``evaluate_bbox`` backends: the reference COCOeval, or detlab's vectorised one.
COCO_EVAL_BACKENDS = ('pycocotools', 'fast')

#: mmdet's names for the entries of ``COCOeval.stats`` (bbox).
COCO_STAT_NAMES = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100', 'AR@300',
                   'AR@1000', 'AR_s@1000', 'AR_m@1000', 'AR_l@1000')
#: What CocoMetric reports when ``metric_items`` is not given.
DEFAULT_METRIC_ITEMS = COCO_STAT_NAMES[:6]
#: Column names of the per-class table, in the order of ``per_class_ap``.
PER_CLASS_HEADERS = ('category', 'mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')

_AREA_ALL, _AREA_SMALL, _AREA_MEDIUM, _AREA_LARGE = 0, 1, 2, 3
_NO_GT = -1  # COCOeval's marker for "no ground truth of this category"
DECIMALS = 3  # mmdet rounds logged metrics to 3 decimals


def evaluate_bbox(coco_gt: COCO,
                  detections: DetectionArrays,
                  cat_ids: Sequence[int],
                  img_ids: Optional[Sequence[int]] = None,
                  iou_thrs: Optional[Sequence[float]] = None,
                  max_dets: Sequence[int] = COCO_MAX_DETS,
                  use_cats: bool = True,
                  backend: str = 'pycocotools') -> CocoEvalResult:
    """COCO box evaluation (evaluate, accumulate, summarize), quietly.

    Args:
        coco_gt (COCO): Ground truth.
        detections (DetectionArrays): The detections, in results-file order.
        cat_ids (Sequence[int]): Categories to evaluate.
        img_ids (Sequence[int], optional): Images to evaluate; all of
            ``coco_gt``'s when None.
        iou_thrs (Sequence[float], optional): IoU thresholds; COCO's
            0.50:0.05:0.95 when None. ``mAP_50``/``mAP_75`` are -1 unless
            0.5/0.75 are among them (as in pycocotools).
        max_dets (Sequence[int]): Three max-detections settings, ascending;
            AP uses the last (``mAP`` itself uses 100, as pycocotools does),
            recall uses all three.
        use_cats (bool): False pools the categories (proposal recall).
        backend (str): ``'pycocotools'`` (the reference COCOeval) or
            ``'fast'`` (detlab's vectorised COCOeval, the same numbers).

    Returns:
        CocoEvalResult: ``stats`` (12,), ``eval`` and the summary text.

    Raises:
        ValueError: if ``max_dets`` is not three ascending integers, or the
            backend is unknown.
    """
    max_dets = _check_max_dets(max_dets)
    if backend not in COCO_EVAL_BACKENDS:
        raise ValueError(f'COCO evaluation backend {backend!r} is not known; use one of '
                         f'{COCO_EVAL_BACKENDS}.')
    iou_thrs = np.asarray(COCO_IOU_THRS if iou_thrs is None else iou_thrs,
                          dtype=np.float64).reshape(-1)
    img_ids = list(coco_gt.getImgIds() if img_ids is None else img_ids)
    if backend == 'fast':
        check_image_ids(coco_gt, detections.image_ids)
        return fast_coco_eval(coco_gt, detections, cat_ids, img_ids=img_ids, iou_thrs=iou_thrs,
                              max_dets=max_dets, use_cats=use_cats)
    return _run_cocoeval(coco_gt, load_detections(coco_gt, detections.to_coco_json()), 'bbox',
                         cat_ids, img_ids, iou_thrs, max_dets, use_cats)


def evaluate_segm(coco_gt: COCO,
                  segm_results: List[dict],
                  cat_ids: Sequence[int],
                  img_ids: Optional[Sequence[int]] = None,
                  iou_thrs: Optional[Sequence[float]] = None,
                  max_dets: Sequence[int] = COCO_MAX_DETS) -> CocoEvalResult:
    """COCO mask evaluation with pycocotools' COCOeval (``iouType='segm'``), quietly.

    detlab's fast backend matches boxes only, so masks are always evaluated by
    pycocotools. As MMDetection, the results' ``bbox`` fields are dropped
    first: with them ``loadRes`` would take each detection's area from its box
    instead of its mask, which moves detections between the small, medium and
    large ranges.

    Args:
        coco_gt (COCO): Ground truth with ``segmentation`` (polygons or RLE).
        segm_results (list[dict]): COCO results, each with ``image_id``,
            ``category_id``, ``score`` and ``segmentation`` (RLE); not modified.
        cat_ids, img_ids, iou_thrs, max_dets: As :func:`evaluate_bbox`.

    Returns:
        CocoEvalResult: ``stats`` (12,), ``eval`` and the summary text.
    """
    max_dets = _check_max_dets(max_dets)
    iou_thrs = np.asarray(COCO_IOU_THRS if iou_thrs is None else iou_thrs,
                          dtype=np.float64).reshape(-1)
    img_ids = list(coco_gt.getImgIds() if img_ids is None else img_ids)
    results = [{key: value for key, value in result.items() if key != 'bbox'}
               for result in segm_results]
    return _run_cocoeval(coco_gt, load_detections(coco_gt, results), 'segm', cat_ids, img_ids,
                         iou_thrs, max_dets, use_cats=True)


def _check_max_dets(max_dets: Sequence[int]) -> List[int]:
    max_dets = [int(m) for m in max_dets]
    if len(max_dets) != len(COCO_MAX_DETS) or sorted(max_dets) != max_dets:
        raise ValueError(f'max_dets (proposal_nums) must be 3 ascending integers like '
                         f'{COCO_MAX_DETS}, got {tuple(max_dets)}.')
    return max_dets


def _run_cocoeval(coco_gt: COCO, coco_dt: COCO, iou_type: str, cat_ids: Sequence[int],
                  img_ids: List[int], iou_thrs: np.ndarray, max_dets: List[int],
                  use_cats: bool) -> CocoEvalResult:
    """pycocotools' evaluate, accumulate and summarize with these parameters, quietly."""
    coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
    coco_eval.params.catIds = list(cat_ids)
    coco_eval.params.imgIds = img_ids
    coco_eval.params.maxDets = max_dets
    coco_eval.params.iouThrs = iou_thrs
    coco_eval.params.useCats = int(use_cats)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        coco_eval.summarize()
    return CocoEvalResult(stats=coco_eval.stats, eval=coco_eval.eval, summary=summary.getvalue())


def stats_to_dict(stats: np.ndarray,
                  metric_items: Optional[Sequence[str]] = None,
                  prefix: str = 'bbox_') -> Dict[str, float]:
    """Name ``COCOeval.stats`` as mmdet does, rounded to 3 decimals.

    Args:
        stats (np.ndarray): (12,) ``COCOeval.stats``.
        metric_items (Sequence[str], optional): Which of ``COCO_STAT_NAMES``
            to keep; ``DEFAULT_METRIC_ITEMS`` (the six APs) when None.
        prefix (str): Put before each name, e.g. ``'bbox_'`` -> ``bbox_mAP``.

    Returns:
        dict[str, float]: e.g. ``{'bbox_mAP': 0.5, 'bbox_mAP_50': 1.0, ...}``.
    """
    items = DEFAULT_METRIC_ITEMS if metric_items is None else metric_items
    check_metric_items(items)
    return {f'{prefix}{item}': round(float(stats[COCO_STAT_NAMES.index(item)]), DECIMALS)
            for item in items}


def check_metric_items(metric_items: Sequence[str]) -> None:
    """Raise a KeyError naming any item that is not a COCO stat name."""
    unknown = [item for item in metric_items if item not in COCO_STAT_NAMES]
    if unknown:
        raise KeyError(f'metric_items {unknown} are not supported; valid items: '
                       f'{list(COCO_STAT_NAMES)}.')


def _masked_mean(precision: np.ndarray) -> np.ndarray:
    """Mean over all axes but the category axis, ignoring -1 entries.

    Args:
        precision (np.ndarray): (T, R, K) or (R, K) precisions.

    Returns:
        np.ndarray: (K,) mean of valid entries, nan where none are valid.
    """
    flat = precision.reshape(-1, precision.shape[-1])
    valid = flat > _NO_GT
    count = valid.sum(axis=0)
    total = np.where(valid, flat, 0.0).sum(axis=0)
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def per_class_ap(precisions: np.ndarray, iou_thrs: Sequence[float]) -> np.ndarray:
    """Per-category AP from ``COCOeval.eval['precision']``, at the largest max-dets.

    Args:
        precisions (np.ndarray): (T, R, K, A, M) precisions, -1 where undefined.
        iou_thrs (Sequence[float]): The T IoU thresholds used.

    Returns:
        np.ndarray: (K, 6) columns mAP, mAP_50, mAP_75, mAP_s, mAP_m, mAP_l
        (``PER_CLASS_HEADERS[1:]``); nan where a category has no ground truth
        (or the IoU threshold 0.5/0.75 was not evaluated).
    """
    iou_thrs = np.asarray(iou_thrs, dtype=np.float64).reshape(-1)
    last_max_dets = -1
    all_area = precisions[..., _AREA_ALL, last_max_dets]  # (T, R, K)
    num_classes = precisions.shape[2]
    columns = [_masked_mean(all_area)]
    for thr in (0.5, 0.75):
        index = np.flatnonzero(np.isclose(iou_thrs, thr))
        columns.append(_masked_mean(all_area[index[0]]) if index.size
                       else np.full(num_classes, np.nan))
    for area in (_AREA_SMALL, _AREA_MEDIUM, _AREA_LARGE):
        columns.append(_masked_mean(precisions[..., area, last_max_dets]))
    return np.stack(columns, axis=1)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Format rows as a bordered plain-text table.

    Args:
        headers (Sequence[str]): Column names.
        rows (Sequence[Sequence]): Cells, each row as long as ``headers``.

    Returns:
        str: The table, one line per row, e.g.::

            +----------+-------+
            | category | mAP   |
            +----------+-------+
            | cat      | 0.5   |
            +----------+-------+
    """
    cells: List[List[str]] = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    border = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def line(row: List[str]) -> str:
        return '| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |'

    body = [line(row) for row in cells[1:]]
    return '\n'.join([border, line(cells[0]), border, *body, border])


def per_class_table(class_names: Sequence[str], class_ap: np.ndarray) -> str:
    """Format ``per_class_ap``'s (K, 6) output with a row per class, 3 decimals."""
    rows = [[name, *(f'{round(float(ap), DECIMALS)}' for ap in aps)]
            for name, aps in zip(class_names, class_ap)]
    return format_table(PER_CLASS_HEADERS, rows)
