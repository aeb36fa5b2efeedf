"""Box format conversions and geometric box transforms.

Boxes are float tensors (..., 4): x1, y1, x2, y2 in pixels unless a name says
otherwise (``cxcywh``: centre x, centre y, width, height).
"""
from numbers import Number
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import AssertionValueError
from .base_boxes import BaseBoxes

#: Directions ``bbox_flip`` understands.
FLIP_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


def bbox_xyxy_to_cxcywh(bbox: Tensor) -> Tensor:
    """Convert boxes from (x1, y1, x2, y2) to (cx, cy, w, h).

    Args:
        bbox (Tensor): (..., 4) x1, y1, x2, y2.

    Returns:
        Tensor: (..., 4) cx, cy, w, h.
    """
    x1, y1, x2, y2 = bbox.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def bbox_cxcywh_to_xyxy(bbox: Tensor) -> Tensor:
    """Convert boxes from (cx, cy, w, h) to (x1, y1, x2, y2).

    Args:
        bbox (Tensor): (..., 4) cx, cy, w, h.

    Returns:
        Tensor: (..., 4) x1, y1, x2, y2.
    """
    cx, cy, w, h = bbox.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def bbox_flip(bboxes: Union[Tensor, np.ndarray], img_shape: Tuple[int, int],
              direction: str = 'horizontal') -> Union[Tensor, np.ndarray]:
    """Flip boxes inside an image of the given shape.

    Args:
        bboxes (Tensor | np.ndarray): (..., 4 * k) x1, y1, x2, y2 repeated k times (class-
            specific boxes keep their layout).
        img_shape (tuple[int, int]): (h, w) of the image the boxes live in.
        direction (str): ``'horizontal'``, ``'vertical'`` or ``'diagonal'``
            (both). Defaults to ``'horizontal'``.

    Returns:
        Tensor | np.ndarray: Flipped boxes, same type and shape; still x1 <= x2 and y1 <= y2.
    """
    if bboxes.shape[-1] % 4 != 0:
        raise AssertionValueError(f'bbox_flip: last dim of bboxes must be a multiple of 4, '
                                  f'got shape {tuple(bboxes.shape)}')
    if direction not in FLIP_DIRECTIONS:
        raise AssertionValueError(f'bbox_flip: direction={direction!r} is not one of '
                                  f'{FLIP_DIRECTIONS}')
    height, width = img_shape[:2]
    flipped = bboxes.copy() if isinstance(bboxes, np.ndarray) else bboxes.clone()
    if direction in ('horizontal', 'diagonal'):
        # The new x1 is the mirror of the old x2 (and vice versa) so the order survives.
        flipped[..., 0::4] = width - bboxes[..., 2::4]
        flipped[..., 2::4] = width - bboxes[..., 0::4]
    if direction in ('vertical', 'diagonal'):
        flipped[..., 1::4] = height - bboxes[..., 3::4]
        flipped[..., 3::4] = height - bboxes[..., 1::4]
    return flipped


def scale_boxes(boxes: Union[Tensor, BaseBoxes],
                scale_factor: Sequence[float]) -> Union[Tensor, BaseBoxes]:
    """Scale boxes by a (w, h) factor, e.g. back to the original image.

    Args:
        boxes (Tensor | BaseBoxes): (..., 4) x1, y1, x2, y2, or a box object.
        scale_factor (Sequence[float]): (w_scale, h_scale), as in the
            ``scale_factor`` metainfo key.

    Returns:
        Tensor | BaseBoxes: (..., 4) scaled boxes: a new tensor, or the box
        object rescaled in place (as MMDetection does).
    """
    if len(scale_factor) != 2:
        raise AssertionValueError(f'scale_boxes: scale_factor must be (w_scale, h_scale), '
                                  f'got {scale_factor!r}')
    if isinstance(boxes, BaseBoxes):
        boxes.rescale_(scale_factor)
        return boxes
    factors = boxes.new_tensor(scale_factor).repeat(2)
    return boxes * factors


def bbox2roi(bbox_list: List[Tensor]) -> Tensor:
    """Stack per-image boxes into RoIs that carry their batch index.

    Args:
        bbox_list (list[Tensor]): One (n_i, 4+) tensor per image; only the
            first 4 columns are used.

    Returns:
        Tensor: (sum n_i, 5) rows ``[batch_ind, x1, y1, x2, y2]``, the format
        ``torchvision.ops.roi_align`` takes.
    """
    if len(bbox_list) == 0:
        return torch.zeros((0, 5))
    rois = [
        torch.cat([boxes.new_full((boxes.size(0), 1), img_id), boxes[:, :4]], dim=-1)
        for img_id, boxes in enumerate(bbox_list)
    ]
    return torch.cat(rois, dim=0)


def get_box_wh(boxes: Union[Tensor, BaseBoxes]) -> Tuple[Tensor, Tensor]:
    """Widths and heights of boxes.

    Args:
        boxes (Tensor | BaseBoxes): (..., 4) x1, y1, x2, y2, or a box object.

    Returns:
        tuple[Tensor, Tensor]: (...,) widths and (...,) heights.
    """
    if isinstance(boxes, BaseBoxes):
        return boxes.widths, boxes.heights
    return boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]


def clip_boxes(boxes: Tensor, max_shape) -> Tensor:
    """Clip boxes to [0, w] x [0, h] of their image.

    Args:
        boxes (Tensor): (..., 4) x1, y1, x2, y2; (B, ..., 4) with one shape
            per image.
        max_shape (Sequence[int] | Tensor | Sequence[Sequence[int]]): (h, w)
            or (h, w, c) of the image, or B such shapes, one per image.

    Returns:
        Tensor: Clipped boxes, same shape (a new tensor).
    """
    if (isinstance(max_shape, Sequence) and len(max_shape) in (2, 3)
            and all(isinstance(size, Number) for size in max_shape)):
        # One (h, w) of Python numbers: clamped with them (the same bounds), as a
        # tensor made from host values would be a copy to the device (a GPU sync).
        img_h, img_w = max_shape[:2]
        upper = (img_w, img_h, img_w, img_h)
        return torch.stack([boxes[..., i].clamp(min=0).clamp(max=upper[i]) for i in range(4)],
                           dim=-1)
    shape = torch.as_tensor(max_shape, dtype=boxes.dtype, device=boxes.device)
    if shape.dim() not in (1, 2) or shape.size(-1) not in (2, 3):
        raise AssertionValueError('clip_boxes: max_shape must be (h, w), (h, w, c) or one of '
                                  f'those per image, got {max_shape!r}')
    # (h, w) -> upper bounds (w, h, w, h) for x1, y1, x2, y2.
    img_wh = shape[..., :2].flip(-1)
    bounds = torch.cat([img_wh, img_wh], dim=-1)
    if shape.dim() == 2:
        if boxes.dim() < 3 or boxes.size(0) != shape.size(0):
            raise AssertionValueError(f'clip_boxes: {shape.size(0)} max_shapes (one per image) '
                                      f'need boxes (B, ..., 4) with B={shape.size(0)}, got boxes '
                                      f'of shape {tuple(boxes.shape)}')
        bounds = bounds.view(shape.size(0), *([1] * (boxes.dim() - 2)), 4)
    return torch.min(boxes.clamp(min=0), bounds)


def bbox_project(bboxes: Union[Tensor, np.ndarray],
                 homography_matrix: Union[Tensor, np.ndarray],
                 img_shape: Optional[Tuple[int, int]] = None) -> Union[Tensor, np.ndarray]:
    """Map boxes through a homography: the box enclosing each box's four mapped corners.

    Args:
        bboxes (Tensor | np.ndarray): (N, 4) x1, y1, x2, y2.
        homography_matrix (Tensor | np.ndarray): (3, 3) matrix acting on
            homogeneous (x, y, 1) column vectors.
        img_shape (tuple[int, int], optional): (h, w) to clip the result to.

    Returns:
        Tensor | np.ndarray: (N, 4) projected boxes, of the input's kind (a new array).
    """
    from .horizontal_boxes import HorizontalBoxes  # the box type imports this module
    boxes = HorizontalBoxes(torch.as_tensor(bboxes))
    boxes.project_(homography_matrix)
    if img_shape is not None:
        boxes.clip_(img_shape)
    return boxes.tensor.numpy() if isinstance(bboxes, np.ndarray) else boxes.tensor


def distance2bbox(points: Tensor, distance: Tensor, max_shape=None) -> Tensor:
    """Boxes from a point and its distances to the four sides.

    Args:
        points (Tensor): (..., N, 2) x, y.
        distance (Tensor): (..., N, 4) left, top, right, bottom distances.
        max_shape (Sequence[int] | Tensor | Sequence[Sequence[int]], optional):
            (h, w) to clip to, or one per image for (B, N, 4) boxes; see
            :func:`clip_boxes`. Defaults to None (no clipping).

    Returns:
        Tensor: (..., N, 4) x1, y1, x2, y2.
    """
    x, y = points[..., 0], points[..., 1]
    bboxes = torch.stack([x - distance[..., 0], y - distance[..., 1],
                          x + distance[..., 2], y + distance[..., 3]], dim=-1)
    return bboxes if max_shape is None else clip_boxes(bboxes, max_shape)


def bbox2distance(points: Tensor, bbox: Tensor, max_dis: Optional[float] = None,
                  eps: float = 0.1) -> Tensor:
    """Distances from points to the four sides of their boxes.

    Args:
        points (Tensor): (..., N, 2) x, y.
        bbox (Tensor): (..., N, 4) x1, y1, x2, y2.
        max_dis (float, optional): Clamp the distances to [0, max_dis - eps].
        eps (float): Keeps a clamped distance strictly below ``max_dis``.

    Returns:
        Tensor: (..., N, 4) left, top, right, bottom.
    """
    x, y = points[..., 0], points[..., 1]
    distance = torch.stack([x - bbox[..., 0], y - bbox[..., 1],
                            bbox[..., 2] - x, bbox[..., 3] - y], dim=-1)
    if max_dis is not None:
        distance = distance.clamp(min=0, max=max_dis - eps)
    return distance
