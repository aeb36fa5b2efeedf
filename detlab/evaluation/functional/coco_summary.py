"""COCOeval's parameters and its ``summarize`` step, shared by both COCO backends."""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: COCOeval's area ranges (all, small, medium, large) in square pixels, inclusive.
AREA_RANGES = np.array([[0, 1e5**2], [0, 32**2], [32**2, 96**2], [96**2, 1e5**2]],
                       dtype=np.float64)
AREA_LABELS = ('all', 'small', 'medium', 'large')
#: The 101 recall levels at which precision is sampled.
RECALL_THRS = np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True)
#: The max-detections setting ``stats[0]`` uses, whatever ``maxDets`` holds
#: (pycocotools' ``_summarize`` default).
SUMMARY_DEFAULT_MAX_DETS = 100


@dataclass
class CocoEvalResult:
    """A finished COCO evaluation, from either backend.

    Attributes:
        stats (np.ndarray): (12,) the summary numbers, as ``COCOeval.stats``.
        eval (dict): ``precision`` and ``scores`` (T, R, K, A, M), ``recall``
            (T, K, A, M), -1 where undefined, as ``COCOeval.eval``; the K
            axis holds the evaluated category ids in ascending order.
        summary (str): The text ``COCOeval.summarize`` prints.
    """
    stats: np.ndarray
    eval: Dict[str, np.ndarray]
    summary: str


_LINE = ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'


def _summarize_one(precision: np.ndarray, recall: np.ndarray, iou_thrs: np.ndarray,
                   max_dets: Sequence[int], ap: bool, iou_thr: Optional[float] = None,
                   area: str = 'all', max_det: int = SUMMARY_DEFAULT_MAX_DETS
                   ) -> Tuple[float, str]:
    """One summary number (mean of the defined entries, -1 if none) and its line."""
    area_at = [i for i, label in enumerate(AREA_LABELS) if label == area]
    max_at = [i for i, m in enumerate(max_dets) if m == max_det]
    values = precision if ap else recall
    if iou_thr is not None:
        values = values[np.where(iou_thr == iou_thrs)[0]]
    values = values[..., area_at, :][..., max_at]
    defined = values[values > -1]
    mean = -1.0 if defined.size == 0 else float(np.mean(defined))
    iou_text = (f'{iou_thrs[0]:0.2f}:{iou_thrs[-1]:0.2f}' if iou_thr is None else
                f'{iou_thr:0.2f}')
    line = _LINE.format('Average Precision' if ap else 'Average Recall',
                        '(AP)' if ap else '(AR)', iou_text, area, max_det, mean)
    return mean, line


def summarize(precision: np.ndarray, recall: np.ndarray, iou_thrs: np.ndarray,
              max_dets: Sequence[int]) -> Tuple[np.ndarray, str]:
    """``COCOeval.summarize`` for boxes: the 12 stats and the printed text.

    Args:
        precision (np.ndarray): (T, R, K, A, M), -1 where undefined.
        recall (np.ndarray): (T, K, A, M), -1 where undefined.
        iou_thrs (np.ndarray): (T,) thresholds (0.5 and 0.75 compared exactly).
        max_dets (Sequence[int]): The three (sorted) max-detections settings.

    Returns:
        tuple: (12,) stats and the summary text, line for line pycocotools'.
    """
    small, big = max_dets[0], max_dets[2]
    settings = [
        dict(ap=True), dict(ap=True, iou_thr=.5, max_det=big),
        dict(ap=True, iou_thr=.75, max_det=big), dict(ap=True, area='small', max_det=big),
        dict(ap=True, area='medium', max_det=big), dict(ap=True, area='large', max_det=big),
        dict(ap=False, max_det=small), dict(ap=False, max_det=max_dets[1]),
        dict(ap=False, max_det=big), dict(ap=False, area='small', max_det=big),
        dict(ap=False, area='medium', max_det=big), dict(ap=False, area='large', max_det=big)]
    stats: List[float] = []
    lines: List[str] = []
    for setting in settings:
        value, line = _summarize_one(precision, recall, iou_thrs, max_dets, **setting)
        stats.append(value)
        lines.append(line)
    return np.array(stats), '\n'.join(lines) + '\n'
