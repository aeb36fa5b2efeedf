"""Proposal recall: MMDetection's ``eval_recalls`` and its summary and plots."""
from typing import List, Optional, Sequence, Union

import numpy as np
from mmengine.logging import print_log

from detlab.structures.errors import AssertionValueError
from .bbox_overlaps import bbox_overlaps
from .coco_eval import format_table


def _as_array(values: Optional[Union[float, int, Sequence, np.ndarray]],
              default: Sequence[float]) -> np.ndarray:
    if values is None:
        return np.asarray(default)
    return np.atleast_1d(np.asarray(values))


def _best_matches(ious: np.ndarray) -> np.ndarray:
    """Greedy one-to-one matching, highest IoU first.

    Args:
        ious (np.ndarray): (G, P) IoUs of G gt boxes with P proposals.

    Returns:
        np.ndarray: (G,) the IoU each gt box got (-1 when proposals ran out).
    """
    ious = ious.copy()
    matched = np.full(ious.shape[0], -1.0)
    for _ in range(min(ious.shape)):
        gt, proposal = np.unravel_index(np.argmax(ious), ious.shape)
        matched[gt] = ious[gt, proposal]
        ious[gt, :] = -1
        ious[:, proposal] = -1
    return matched


def eval_recalls(gts: Sequence[np.ndarray],
                 proposals: Sequence[np.ndarray],
                 proposal_nums: Optional[Union[int, Sequence[int]]] = None,
                 iou_thrs: Union[float, Sequence[float]] = 0.5,
                 logger=None,
                 use_legacy_coordinate: bool = False) -> np.ndarray:
    """Recall of the top proposals of each image, at each IoU threshold.

    Each gt box is matched to at most one proposal (greedily, highest IoU
    first) among the image's top ``n`` proposals, ranked by score when
    proposals carry one.

    Args:
        gts (list[np.ndarray]): Per image, (G, 4) gt boxes.
        proposals (list[np.ndarray]): Per image, (P, 4) or (P, 5) with scores.
        proposal_nums (int | Sequence[int]): Top-n settings; all when None.
        iou_thrs (float | Sequence[float]): IoU thresholds.
        logger: Where to print the table (``'silent'`` for nowhere).
        use_legacy_coordinate (bool): Widths as ``x2 - x1 + 1``.

    Returns:
        np.ndarray: (len(proposal_nums), len(iou_thrs)) recalls.
    """
    if len(gts) != len(proposals):
        raise AssertionValueError(f'eval_recalls: {len(gts)} gt lists but {len(proposals)} '
                                  'proposal lists; give one of each per image.')
    most = max([len(p) for p in proposals], default=0)
    nums = _as_array(proposal_nums, [most]).astype(np.int64)
    thrs = _as_array(iou_thrs, [0.5]).astype(np.float64)
    best = [[] for _ in nums]  # per proposal num, per image: (G,) matched IoUs
    for gt, props in zip(gts, proposals):
        gt = np.zeros((0, 4)) if gt is None else np.asarray(gt).reshape(-1, 4)
        props = np.asarray(props)
        if props.ndim == 2 and props.shape[1] == 5:
            props = props[np.argsort(-props[:, 4], kind='stable')]
        ious = bbox_overlaps(gt, props[:nums.max(), :4].reshape(-1, 4),
                             use_legacy_coordinate=use_legacy_coordinate)
        for row, num in enumerate(nums):
            best[row].append(_best_matches(ious[:, :num]))
    total = sum(len(np.asarray(gt).reshape(-1, 4)) for gt in gts if gt is not None)
    matched = np.array([np.concatenate(row) if row else np.zeros(0) for row in best])
    recalls = (matched.reshape(len(nums), -1, 1) >= thrs).sum(axis=1) / max(total, 1)
    print_recall_summary(recalls, nums, thrs, logger=logger)
    return recalls


def print_recall_summary(recalls: np.ndarray,
                         proposal_nums: Sequence[int],
                         iou_thrs: Sequence[float],
                         row_idxs: Optional[Sequence[int]] = None,
                         col_idxs: Optional[Sequence[int]] = None,
                         logger=None) -> None:
    """Log recalls as a table: a row per proposal number, a column per IoU."""
    if logger == 'silent':
        return
    nums = np.asarray(proposal_nums)
    thrs = np.asarray(iou_thrs)
    rows_at = np.arange(len(nums)) if row_idxs is None else np.asarray(row_idxs)
    cols_at = np.arange(len(thrs)) if col_idxs is None else np.asarray(col_idxs)
    rows: List[List[object]] = [[int(nums[r]), *(f'{recalls[r, c]:.3f}' for c in cols_at)]
                                for r in rows_at]
    print_log('\n' + format_table(['', *(str(t) for t in thrs[cols_at])], rows), logger=logger)


def _line_plot(xs: List[float], ys: List[float], xlabel: str, x_range: Sequence[float]):
    import matplotlib.pyplot as plt
    figure = plt.figure()
    plt.plot(xs, ys)
    plt.xlabel(xlabel)
    plt.ylabel('Recall')
    plt.axis([*x_range, 0, 1])
    return figure


def plot_num_recall(recalls: Sequence[float], proposal_nums: Sequence[int]):
    """A recall vs number-of-proposals figure (returned; save or show it)."""
    nums = [int(n) for n in np.asarray(proposal_nums).reshape(-1)]
    return _line_plot([0] + nums, [0.0] + list(np.asarray(recalls, dtype=float).reshape(-1)),
                      'Proposal num', [0, max(nums)])


def plot_iou_recall(recalls: Sequence[float], iou_thrs: Sequence[float]):
    """A recall vs IoU-threshold figure (returned; save or show it)."""
    thrs = [float(t) for t in np.asarray(iou_thrs).reshape(-1)]
    return _line_plot(thrs + [1.0], list(np.asarray(recalls, dtype=float).reshape(-1)) + [0.0],
                      'IoU', [min(thrs), 1])
