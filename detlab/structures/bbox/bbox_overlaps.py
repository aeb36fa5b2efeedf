"""Pairwise and aligned overlaps (IoU, IoF, GIoU) between boxes."""
import torch
from torch import Tensor

from ..errors import AssertionValueError

#: Overlap modes ``bbox_overlaps`` understands.
OVERLAP_MODES = ('iou', 'iof', 'giou')


def _validate_boxes(name: str, boxes: Tensor) -> None:
    """Fail clearly on a box tensor that is not (..., N, 4)."""
    if boxes.dim() < 2 or (boxes.size(-1) != 4 and boxes.size(-2) != 0):
        raise AssertionValueError(f'bbox_overlaps: {name} must have shape (..., N, 4) '
                                  f'(x1, y1, x2, y2), got {tuple(boxes.shape)}')


def bbox_overlaps(bboxes1: Tensor,
                  bboxes2: Tensor,
                  mode: str = 'iou',
                  is_aligned: bool = False,
                  eps: float = 1e-6) -> Tensor:
    """Overlaps between two sets of boxes.

    ``'iou'`` is intersection over union, ``'iof'`` intersection over the area
    of ``bboxes1`` (the "foreground"), ``'giou'`` generalised IoU (in
    [-1, 1]). Only broadcasting is used, so the cost is one (..., M, N) tensor
    per intermediate quantity; no Python loop over boxes.

    Args:
        bboxes1 (Tensor): (..., M, 4) x1, y1, x2, y2 in pixels.
        bboxes2 (Tensor): (..., N, 4) x1, y1, x2, y2, same leading dims as
            ``bboxes1``.
        mode (str): One of ``'iou'``, ``'iof'``, ``'giou'``.
        is_aligned (bool): Compare the i-th box of ``bboxes1`` with the i-th of
            ``bboxes2`` only (M must equal N). Defaults to False.
        eps (float): Lower bound of the denominators, so degenerate boxes give
            0 instead of NaN. Defaults to 1e-6.

    Returns:
        Tensor: (..., M, N) overlaps, or (..., M) when ``is_aligned``.
    """
    if mode not in OVERLAP_MODES:
        raise AssertionValueError(f'bbox_overlaps: mode={mode!r} is not supported; '
                                  f'choose one of {OVERLAP_MODES}')
    _validate_boxes('bboxes1', bboxes1)
    _validate_boxes('bboxes2', bboxes2)
    if bboxes1.shape[:-2] != bboxes2.shape[:-2]:
        raise AssertionValueError('bbox_overlaps: bboxes1 and bboxes2 need the same leading '
                                  f'(batch) dims, got {tuple(bboxes1.shape)} and '
                                  f'{tuple(bboxes2.shape)}')
    rows, cols = bboxes1.size(-2), bboxes2.size(-2)
    if is_aligned and rows != cols:
        raise AssertionValueError(f'bbox_overlaps: is_aligned=True needs as many boxes in bboxes1 '
                                  f'({rows}) as in bboxes2 ({cols})')
    batch_shape = bboxes1.shape[:-2]
    if rows * cols == 0:
        out_shape = batch_shape + ((rows, ) if is_aligned else (rows, cols))
        return bboxes1.new_zeros(out_shape)

    if not is_aligned:
        # (..., M, 1, 4) against (..., 1, N, 4) broadcasts to every pair.
        bboxes1 = bboxes1[..., :, None, :]
        bboxes2 = bboxes2[..., None, :, :]
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])

    top_left = torch.max(bboxes1[..., :2], bboxes2[..., :2])
    bottom_right = torch.min(bboxes1[..., 2:], bboxes2[..., 2:])
    inter_wh = (bottom_right - top_left).clamp(min=0)
    overlap = inter_wh[..., 0] * inter_wh[..., 1]

    if mode == 'iof':
        union = area1.expand_as(overlap)
    else:
        union = area1 + area2 - overlap
    # clamp with a Python number: the same float32 bound as a one-element
    # tensor, without a host tensor copied to the device (a GPU would sync).
    union = union.clamp(min=eps)
    ious = overlap / union
    if mode != 'giou':
        return ious

    enclose_wh = (torch.max(bboxes1[..., 2:], bboxes2[..., 2:]) -
                  torch.min(bboxes1[..., :2], bboxes2[..., :2])).clamp(min=0)
    enclose_area = (enclose_wh[..., 0] * enclose_wh[..., 1]).clamp(min=eps)
    return ious - (enclose_area - union) / enclose_area
