"""Mask helpers: polygons <-> bitmaps, RLE encoding, tight boxes of mask tensors."""
from typing import List, Sequence, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
from mmengine.utils import slice_list
from torch import Tensor


def polygon_to_bitmap(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise one object's flat polygons into an (h, w) bool mask (COCO's rule)."""
    polygons = [np.asarray(p, dtype=np.float64) for p in polygons if len(p) >= 6]
    if not polygons:
        return np.zeros((height, width), dtype=bool)
    rles = mask_util.frPyObjects(polygons, height, width)
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def bitmap_to_polygon(bitmap: np.ndarray) -> Tuple[List[np.ndarray], bool]:
    """Outer and hole contours of an (h, w) mask as (k, 2) int arrays; and whether it has holes."""
    outs = cv2.findContours(bitmap.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    contours, hierarchy = outs[-2], outs[-1]
    if hierarchy is None:
        return [], False
    # hierarchy[0][i][3] is the parent contour; one with a parent is a hole.
    with_hole = bool((hierarchy.reshape(-1, 4)[:, 3] >= 0).any())
    return [c.reshape(-1, 2) for c in contours], with_hole


def clip_polygon_to_box(points: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Clip a (k, 2) polygon to an axis-aligned box (Sutherland-Hodgman).

    Returns the (m, 2) clipped polygon; m < 3 means nothing of it is left. A
    concave polygon that the box cuts in two comes back as one polygon joined
    along the box edge, which rasterises to the same pixels.
    """
    x1, y1, x2, y2 = box
    # Each edge keeps the side where sign * coord >= sign * limit.
    edges = ((0, x1, 1.0), (0, x2, -1.0), (1, y1, 1.0), (1, y2, -1.0))
    for axis, limit, sign in edges:
        if len(points) == 0:
            break
        nxt = np.roll(points, -1, axis=0)
        inside = sign * (points[:, axis] - limit) >= 0
        nxt_inside = np.roll(inside, -1)
        out = []
        for p, q, p_in, q_in in zip(points, nxt, inside, nxt_inside):
            if p_in:
                out.append(p)
            if p_in != q_in:
                t = (limit - p[axis]) / (q[axis] - p[axis])
                out.append(p + t * (q - p))
        points = np.array(out, dtype=np.float64).reshape(-1, 2)
    return points


def mask2bbox(masks: Tensor) -> Tensor:
    """(n, 4) float boxes enclosing (n, h, w) binary masks; x2/y2 at the far pixel edge."""
    n, height, width = masks.shape
    boxes = masks.new_zeros((n, 4), dtype=torch.float32)
    if n == 0:
        return boxes
    x_any, y_any = masks.any(dim=1), masks.any(dim=2)
    cols = torch.arange(width, device=masks.device)
    rows = torch.arange(height, device=masks.device)
    big = max(height, width) + 1
    boxes[:, 0] = torch.where(x_any, cols, big).min(dim=1)[0].float()
    boxes[:, 1] = torch.where(y_any, rows, big).min(dim=1)[0].float()
    boxes[:, 2] = torch.where(x_any, cols + 1, 0).max(dim=1)[0].float()
    boxes[:, 3] = torch.where(y_any, rows + 1, 0).max(dim=1)[0].float()
    boxes[~x_any.any(dim=1)] = 0
    return boxes


def encode_mask_results(mask_results: Sequence[np.ndarray]) -> List[dict]:
    """COCO RLE of each (h, w) binary mask."""
    return [mask_util.encode(np.array(mask[:, :, None], order='F', dtype=np.uint8))[0]
            for mask in mask_results]


def split_combined_polys(polys: Sequence, poly_lens: Sequence,
                         polys_per_mask: Sequence) -> list:
    """Per image, undo the flattening of masks -> polygons -> coordinates.

    Args:
        polys (list): Per image, all coordinates in one 1-D sequence.
        poly_lens (list): Per image, the length of each polygon.
        polys_per_mask (list): Per image, the number of polygons of each mask.

    Returns:
        list: Per image, per mask, the list of its polygons.
    """
    return [slice_list(slice_list(polys[i], list(poly_lens[i])), list(polys_per_mask[i]))
            for i in range(len(polys))]
