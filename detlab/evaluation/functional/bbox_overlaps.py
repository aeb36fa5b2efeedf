"""MMDetection's numpy ``bbox_overlaps`` for evaluation (float32, optional legacy +1)."""
import numpy as np

from detlab.structures.errors import AssertionValueError

#: Overlap modes: intersection over union, or over the area of ``bboxes1``.
EVAL_OVERLAP_MODES = ('iou', 'iof')


def bbox_overlaps(bboxes1: np.ndarray,
                  bboxes2: np.ndarray,
                  mode: str = 'iou',
                  eps: float = 1e-6,
                  use_legacy_coordinate: bool = False) -> np.ndarray:
    """IoU (or IoF) between every box of ``bboxes1`` and every box of ``bboxes2``.

    Args:
        bboxes1 (np.ndarray): (N, 4) x1, y1, x2, y2.
        bboxes2 (np.ndarray): (K, 4) x1, y1, x2, y2.
        mode (str): ``'iou'`` or ``'iof'`` (intersection over ``bboxes1``'s area).
        eps (float): Lower bound of the denominator.
        use_legacy_coordinate (bool): Widths and heights as ``x2 - x1 + 1``
            (the PASCAL VOC devkit's convention).

    Returns:
        np.ndarray: (N, K) float32 overlaps.
    """
    if mode not in EVAL_OVERLAP_MODES:
        raise AssertionValueError(f'bbox_overlaps: mode={mode!r}, expected one of '
                                  f'{EVAL_OVERLAP_MODES}.')
    extra = 1.0 if use_legacy_coordinate else 0.0
    boxes1 = np.asarray(bboxes1, dtype=np.float32).reshape(-1, 4)[:, None, :]  # (N, 1, 4)
    boxes2 = np.asarray(bboxes2, dtype=np.float32).reshape(-1, 4)[None, :, :]  # (1, K, 4)
    area1 = (boxes1[..., 2] - boxes1[..., 0] + extra) * (boxes1[..., 3] - boxes1[..., 1] + extra)
    area2 = (boxes2[..., 2] - boxes2[..., 0] + extra) * (boxes2[..., 3] - boxes2[..., 1] + extra)
    width = np.minimum(boxes1[..., 2], boxes2[..., 2]) - np.maximum(boxes1[..., 0],
                                                                    boxes2[..., 0]) + extra
    height = np.minimum(boxes1[..., 3], boxes2[..., 3]) - np.maximum(boxes1[..., 1],
                                                                     boxes2[..., 1]) + extra
    overlap = np.maximum(width, 0) * np.maximum(height, 0)
    union = area1 + area2 - overlap if mode == 'iou' else np.broadcast_to(area1, overlap.shape)
    return (overlap / np.maximum(union, np.float32(eps))).astype(np.float32)
