"""PolygonMasks: N instance masks, each a list of polygons ``[x0, y0, x1, y1, ...]``."""
from typing import Callable, List, Optional, Sequence

import cv2
import mmcv
import numpy as np
import torch

from ..errors import AssertionTypeError, AssertionValueError
from .base import BaseInstanceMasks, check_cat, check_flip_direction
from .utils import clip_polygon_to_box, polygon_to_bitmap

Polygons = List[List[np.ndarray]]
#: Placeholder for an object whose polygons were all cropped away; keeps masks aligned with boxes.
EMPTY_POLYGON = np.zeros(6, dtype=np.float64)


class PolygonMasks(BaseInstanceMasks):
    """Instance masks as polygons, as COCO stores them.

    Args:
        masks (list[list[np.ndarray]]): Per object, its polygons; each a
            flat (2k,) array x0, y0, x1, y1, ... in pixels.
        height (int): Image height h.
        width (int): Image width w.
    """

    def __init__(self, masks: Polygons, height: int, width: int) -> None:
        if not isinstance(masks, list):
            raise AssertionTypeError('PolygonMasks: masks must be a list (objects) of lists '
                                     f'(polygons) of arrays, got {type(masks).__name__}.')
        if masks and not (isinstance(masks[0], list) and masks[0]
                          and isinstance(masks[0][0], np.ndarray)):
            raise AssertionTypeError('PolygonMasks: each object must be a non-empty list of flat '
                                     'np.ndarray polygons.')
        self.height, self.width = int(height), int(width)
        self.masks = masks

    def __getitem__(self, index) -> 'PolygonMasks':
        if isinstance(index, np.ndarray):
            index = np.flatnonzero(index).tolist() if index.dtype == bool else index.tolist()
        elif isinstance(index, torch.Tensor):
            index = (torch.nonzero(index).flatten() if index.dtype == torch.bool
                     else index).tolist()
        if isinstance(index, list):
            masks = [self.masks[i] for i in index]
        elif isinstance(index, (int, np.integer)):
            masks = [self.masks[index]]
        elif isinstance(index, slice):
            masks = self.masks[index]
        else:
            raise AssertionTypeError(f'PolygonMasks: cannot index with {type(index).__name__}; '
                                     'use an int, slice, list or array.')
        return PolygonMasks(masks, self.height, self.width)

    def _map_points(self, func: Callable[[np.ndarray], np.ndarray], height: int,
                    width: int) -> 'PolygonMasks':
        """Apply ``func`` to each polygon's (k, 2) points (a copy)."""
        mapped = [[func(p.reshape(-1, 2).astype(np.float64)).reshape(-1) for p in obj]
                  for obj in self.masks]
        return PolygonMasks(mapped, height, width)

    def rescale(self, scale, interpolation: Optional[str] = None) -> 'PolygonMasks':
        new_w, new_h = mmcv.rescale_size((self.width, self.height), scale)
        return self.resize((new_h, new_w))

    def resize(self, out_shape, interpolation: Optional[str] = None) -> 'PolygonMasks':
        out_h, out_w = out_shape[:2]
        factors = np.array([out_w / self.width, out_h / self.height])
        return self._map_points(lambda xy: xy * factors, out_h, out_w)

    def flip(self, flip_direction: str = 'horizontal') -> 'PolygonMasks':
        check_flip_direction(flip_direction)
        flip_x = flip_direction in ('horizontal', 'diagonal')
        flip_y = flip_direction in ('vertical', 'diagonal')

        def mirror(xy: np.ndarray) -> np.ndarray:
            if flip_x:
                xy[:, 0] = self.width - xy[:, 0]
            if flip_y:
                xy[:, 1] = self.height - xy[:, 1]
            return xy

        return self._map_points(mirror, self.height, self.width)

    def crop(self, bbox: np.ndarray) -> 'PolygonMasks':
        bbox = np.asarray(bbox, dtype=np.float64).reshape(-1).copy()
        if bbox.shape != (4,):
            raise AssertionValueError('PolygonMasks.crop: bbox must be (x1, y1, x2, y2), got '
                                      f'{bbox!r}.')
        bbox[0::2] = bbox[0::2].clip(0, self.width)
        bbox[1::2] = bbox[1::2].clip(0, self.height)
        x1, y1, x2, y2 = bbox
        width, height = max(x2 - x1, 1), max(y2 - y1, 1)
        cropped = []
        for obj in self.masks:
            parts = [clip_polygon_to_box(p.reshape(-1, 2), bbox) for p in obj]
            parts = [(xy - (x1, y1)).reshape(-1) for xy in parts if len(xy) >= 3]
            cropped.append(parts or [EMPTY_POLYGON.copy()])
        return PolygonMasks(cropped, height, width)

    def pad(self, out_shape, pad_val: int = 0) -> 'PolygonMasks':
        return PolygonMasks(self.masks, *out_shape[:2])

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> 'PolygonMasks':
        return self._map_points(lambda xy: xy + (left, top), expanded_h, expanded_w)

    def crop_and_resize(self, bboxes: np.ndarray, out_shape, inds: np.ndarray,
                        device: str = 'cpu', interpolation: str = 'bilinear',
                        binarize: bool = True):
        from .bitmap_masks import BitmapMasks
        out_h, out_w = out_shape[:2]
        bboxes, inds = np.asarray(bboxes), np.asarray(inds)
        targets = []
        for box, ind in zip(bboxes, inds):
            # In the boxes' own dtype (float32 RoIs), boxes under a pixel
            # counted as one, as MMDetection: the same scales to the last bit.
            x1, y1, x2, y2 = box
            w_scale = out_w / np.maximum(x2 - x1, 1)
            h_scale = out_h / np.maximum(y2 - y1, 1)
            polys = []
            for poly in self.masks[int(ind)]:
                poly = np.array(poly, dtype=np.float64)
                poly[0::2] = (poly[0::2] - x1) * w_scale
                poly[1::2] = (poly[1::2] - y1) * h_scale
                polys.append(poly)
            targets.append(polygon_to_bitmap(polys, out_h, out_w))
        return BitmapMasks(np.stack(targets) if targets else [], out_h, out_w)

    def _affine(self, matrix: np.ndarray, out_shape) -> 'PolygonMasks':
        """Map points by a (2, 3) or (3, 3) matrix, then clip them to ``out_shape``."""
        out_h, out_w = out_shape[:2]
        matrix = np.asarray(matrix, dtype=np.float64)

        def apply(xy: np.ndarray) -> np.ndarray:
            mapped = np.hstack([xy, np.ones((len(xy), 1))]) @ matrix.T
            if mapped.shape[1] == 3:
                mapped = mapped[:, :2] / mapped[:, 2:3]
            mapped[:, 0] = mapped[:, 0].clip(0, out_w)
            mapped[:, 1] = mapped[:, 1].clip(0, out_h)
            return mapped

        return self._map_points(apply, out_h, out_w)

    def translate(self, out_shape, offset: float, direction: str = 'horizontal',
                  border_value=None, interpolation=None) -> 'PolygonMasks':
        shift = (offset, 0) if direction == 'horizontal' else (0, offset)
        return self._affine(np.array([[1, 0, shift[0]], [0, 1, shift[1]]]), out_shape)

    def shear(self, out_shape, magnitude: float, direction: str = 'horizontal',
              border_value=None, interpolation=None) -> 'PolygonMasks':
        matrix = ([[1, magnitude, 0], [0, 1, 0]] if direction == 'horizontal'
                  else [[1, 0, 0], [magnitude, 1, 0]])
        return self._affine(np.array(matrix), out_shape)

    def rotate(self, out_shape, angle: float, center=None, scale: float = 1.0,
               border_value=None, interpolation=None) -> 'PolygonMasks':
        if center is None:
            center = ((self.width - 1) * 0.5, (self.height - 1) * 0.5)
        # mmcv.imrotate turns images clockwise for positive angles; match it.
        return self._affine(cv2.getRotationMatrix2D(center, -angle, scale), out_shape)

    def warp_perspective(self, matrix: np.ndarray, out_shape) -> 'PolygonMasks':
        """Map through a (3, 3) homography; points are clipped to ``out_shape``."""
        return self._affine(matrix, out_shape)

    def to_bitmap(self):
        """The same masks as :class:`BitmapMasks`."""
        from .bitmap_masks import BitmapMasks
        return BitmapMasks(self.to_ndarray(), self.height, self.width)

    @property
    def areas(self) -> np.ndarray:
        """(N,) summed shoelace areas of each object's polygons (holes are not subtracted)."""
        return np.array([sum(_polygon_area(p.reshape(-1, 2)) for p in obj)
                         for obj in self.masks], dtype=np.float64)

    def to_ndarray(self) -> np.ndarray:
        if len(self) == 0:
            return np.empty((0, self.height, self.width), dtype=np.uint8)
        return np.stack([polygon_to_bitmap(obj, self.height, self.width).astype(np.uint8)
                         for obj in self.masks])

    def to_tensor(self, dtype: torch.dtype, device) -> torch.Tensor:
        return torch.as_tensor(self.to_ndarray(), dtype=dtype, device=device)

    def enclosing_boxes(self) -> np.ndarray:
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        for i, obj in enumerate(self.masks):
            points = np.concatenate([p.reshape(-1, 2) for p in obj])
            if len(points):
                boxes[i, :2], boxes[i, 2:] = points.min(axis=0), points.max(axis=0)
        return boxes

    @classmethod
    def random(cls, num_masks: int = 3, height: int = 32, width: int = 32, n_verts: int = 5,
               dtype: type = np.float32,
               rng: Optional[np.random.RandomState] = None) -> 'PolygonMasks':
        """Random star-shaped polygons inside the image (coordinates of ``dtype``), for tests
        and demos."""
        rng = np.random.RandomState(0) if rng is None else rng
        masks = []
        for _ in range(num_masks):
            angles = np.sort(rng.uniform(0, 2 * np.pi, n_verts))
            centre = rng.uniform(0.3, 0.7, 2) * (width, height)
            radius = rng.uniform(0.1, 0.3, n_verts)[:, None] * (width, height)
            xy = centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
            masks.append([xy.reshape(-1).astype(dtype)])
        return cls(masks, height, width)

    @classmethod
    def cat(cls, masks: Sequence['PolygonMasks']) -> 'PolygonMasks':
        check_cat(cls, masks)
        return cls([obj for m in masks for obj in m.masks], masks[0].height, masks[0].width)


def _polygon_area(xy: np.ndarray) -> float:
    x, y = xy[:, 0], xy[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
