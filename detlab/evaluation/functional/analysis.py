"""Error analysis of detections: confusion matrix, PR curves, best-F1 operating points.

Inputs are per-image numpy arrays in original-image pixels: ground truth
``bboxes`` (G, 4) and ``labels`` (G,), predictions ``bboxes`` (D, 4),
``scores`` (D,) and ``labels`` (D,). Labels are contiguous ``0..K-1``.
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from detlab.structures.errors import AssertionValueError
from .bbox_overlaps import bbox_overlaps
from .mean_ap import tpfp_default

#: Index of the background row/column in a (K + 1, K + 1) confusion matrix.
BACKGROUND = -1


def _as_boxes(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(-1, 4)


def image_confusion(confusion: np.ndarray, gt: dict, pred: dict, score_thr: float = 0.0,
                    tp_iou_thr: float = 0.5) -> None:
    """Add one image to a detection confusion matrix, in place, as MMDetection does.

    Rows are gt classes, columns predicted classes; the last row and column
    are background. Every kept prediction (score >= ``score_thr``) adds 1 to
    (gt class, predicted class) for each gt box it overlaps with IoU >=
    ``tp_iou_thr``, or to (background, predicted class) when it overlaps
    none; a gt box that no kept prediction of its own class overlaps adds 1
    to (gt class, background).

    Args:
        confusion (np.ndarray): (K + 1, K + 1) counts, updated in place.
        gt (dict): ``bboxes`` (G, 4), ``labels`` (G,).
        pred (dict): ``bboxes`` (D, 4), ``scores`` (D,), ``labels`` (D,).
        score_thr (float): Predictions below it are dropped.
        tp_iou_thr (float): IoU at which a prediction overlaps a gt box.
    """
    gt_boxes, gt_labels = _as_boxes(gt['bboxes']), np.asarray(gt['labels'], np.int64).reshape(-1)
    keep = np.asarray(pred['scores']).reshape(-1) >= score_thr
    det_boxes = _as_boxes(pred['bboxes'])[keep]
    det_labels = np.asarray(pred['labels'], np.int64).reshape(-1)[keep]
    overlaps = bbox_overlaps(det_boxes, gt_boxes) >= tp_iou_thr  # (D, G)
    det_index, gt_index = np.nonzero(overlaps)
    np.add.at(confusion, (gt_labels[gt_index], det_labels[det_index]), 1)
    np.add.at(confusion, (BACKGROUND, det_labels[~overlaps.any(axis=1)]), 1)
    found = (overlaps & (det_labels[:, None] == gt_labels[None, :])).any(axis=0)
    np.add.at(confusion, (gt_labels[~found], BACKGROUND), 1)


def confusion_matrix(gts: Sequence[dict], preds: Sequence[dict], num_classes: int,
                     score_thr: float = 0.0, tp_iou_thr: float = 0.5) -> np.ndarray:
    """Detection confusion matrix over a dataset (see :func:`image_confusion`).

    Args:
        gts (Sequence[dict]): Per image ``bboxes`` (G, 4), ``labels`` (G,).
        preds (Sequence[dict]): Per image ``bboxes``, ``scores``, ``labels``.
        num_classes (int): K.
        score_thr (float): Predictions below it are dropped.
        tp_iou_thr (float): IoU at which a prediction overlaps a gt box.

    Returns:
        np.ndarray: (K + 1, K + 1) counts; row = gt class, column =
        predicted class, index K = background.
    """
    if len(gts) != len(preds):
        raise AssertionValueError(f'confusion_matrix: {len(gts)} ground truths but {len(preds)} '
                                  'predictions; give one of each per image.')
    confusion = np.zeros((num_classes + 1, num_classes + 1), dtype=np.int64)
    for gt, pred in zip(gts, preds):
        image_confusion(confusion, gt, pred, score_thr, tp_iou_thr)
    return confusion


@dataclass
class PRCurve:
    """One class's precision-recall curve over its detections in score order.

    Attributes:
        scores (np.ndarray): (D,) detection scores, descending.
        precision (np.ndarray): (D,) precision of the top-i detections.
        recall (np.ndarray): (D,) recall of the top-i detections.
        num_gts (int): Non-ignored gt boxes of the class.
    """
    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    num_gts: int

    @property
    def f1(self) -> np.ndarray:
        """(D,) F1 of the top-i detections (0 where precision + recall is 0)."""
        total = self.precision + self.recall
        return np.divide(2 * self.precision * self.recall, total, out=np.zeros_like(total),
                         where=total > 0)


def pr_curves(gts: Sequence[dict], preds: Sequence[dict], num_classes: int,
              iou_thr: float = 0.5) -> List[PRCurve]:
    """Per-class precision-recall curves, VOC-style matching at ``iou_thr``.

    Args:
        gts (Sequence[dict]): Per image ``bboxes`` (G, 4), ``labels`` (G,)
            and optionally ``ignore_flags`` (G,) (ignored boxes neither count
            nor penalise).
        preds (Sequence[dict]): Per image ``bboxes``, ``scores``, ``labels``.
        num_classes (int): K.
        iou_thr (float): IoU for a true positive.

    Returns:
        list[PRCurve]: One per class.
    """
    flags: List[List[np.ndarray]] = [[] for _ in range(num_classes)]
    scores: List[List[np.ndarray]] = [[] for _ in range(num_classes)]
    num_gts = np.zeros(num_classes, dtype=np.int64)
    for gt, pred in zip(gts, preds):
        gt_boxes, gt_labels = _as_boxes(gt['bboxes']), np.asarray(gt['labels']).reshape(-1)
        ignored = np.asarray(gt.get('ignore_flags', np.zeros(len(gt_labels)))).reshape(-1)
        ignored = ignored.astype(bool)
        det_labels = np.asarray(pred['labels']).reshape(-1)
        det_scores = np.asarray(pred['scores'], np.float64).reshape(-1)
        dets = np.hstack([_as_boxes(pred['bboxes']), det_scores[:, None].astype(np.float32)])
        np.add.at(num_gts, gt_labels[~ignored], 1)
        for label in np.unique(det_labels):  # classes without detections add no point
            mine = gt_labels == label
            class_dets = dets[det_labels == label]
            tp, fp = tpfp_default(class_dets, gt_boxes[mine & ~ignored],
                                  gt_boxes[mine & ignored], iou_thr)
            counted = (tp[0] + fp[0]) > 0  # detections on ignored boxes drop out
            flags[label].append(tp[0][counted])
            scores[label].append(det_scores[det_labels == label][counted])
    curves = []
    for label in range(num_classes):
        class_flags = np.concatenate(flags[label]) if flags[label] else np.zeros(0)
        class_scores = np.concatenate(scores[label]) if scores[label] else np.zeros(0)
        order = np.argsort(-class_scores, kind='stable')
        tp_cum = np.cumsum(class_flags[order])
        ranks = np.arange(1, len(order) + 1)
        curves.append(PRCurve(scores=class_scores[order], precision=tp_cum / ranks,
                              recall=tp_cum / max(int(num_gts[label]), 1),
                              num_gts=int(num_gts[label])))
    return curves


@dataclass
class OperatingPoint:
    """A class's precision, recall and F1 at the score threshold that maximises F1."""
    precision: float
    recall: float
    f1: float
    score_thr: float


def best_f1(curve: PRCurve) -> OperatingPoint:
    """The point of a PR curve with the highest F1 (the first, at ties).

    Keeping every detection scoring at least ``score_thr`` gives that
    precision and recall. A class without detections (or without any true
    positive) gives zeros and ``score_thr`` 1.
    """
    f1 = curve.f1
    if f1.size == 0 or f1.max() == 0:
        return OperatingPoint(precision=0.0, recall=0.0, f1=0.0, score_thr=1.0)
    # All detections tied with the best one's score are kept with it.
    last_of_score = np.r_[curve.scores[1:] != curve.scores[:-1], True]
    candidates = np.flatnonzero(last_of_score)
    best = candidates[np.argmax(f1[candidates])]
    return OperatingPoint(precision=float(curve.precision[best]),
                          recall=float(curve.recall[best]), f1=float(f1[best]),
                          score_thr=float(curve.scores[best]))
