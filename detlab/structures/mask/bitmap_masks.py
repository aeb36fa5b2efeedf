"""BitmapMasks: N instance masks stored as an (N, h, w) uint8 array."""
from typing import Optional, Sequence, Tuple

import cv2
import mmcv
import numpy as np
import torch
from torchvision.ops import roi_align

from ..errors import AssertionTypeError, AssertionValueError
from .base import BaseInstanceMasks, check_cat, check_flip_direction

#: Flip axis of the (N, h, w) array per direction.
_FLIP_AXES = {'horizontal': (2,), 'vertical': (1,), 'diagonal': (1, 2)}


class BitmapMasks(BaseInstanceMasks):
    """Instance masks as bitmaps.

    Args:
        masks (np.ndarray | list[np.ndarray]): (N, h, w) array or N (h, w) arrays.
        height (int): Image height h.
        width (int): Image width w.
    """

    def __init__(self, masks, height: int, width: int) -> None:
        self.height, self.width = int(height), int(width)
        if len(masks) == 0:
            self.masks = np.empty((0, self.height, self.width), dtype=np.uint8)
            return
        if not isinstance(masks, (list, np.ndarray)):
            raise AssertionTypeError(f'BitmapMasks: masks must be an array or list of arrays, got '
                                     f'{type(masks).__name__}.')
        masks = np.stack(masks) if isinstance(masks, list) else np.asarray(masks)
        if masks.ndim != 3 or masks.shape[1:] != (self.height, self.width):
            raise AssertionValueError(f'BitmapMasks: masks of shape {masks.shape} do not match '
                                      f'(N, {self.height}, {self.width}).')
        self.masks = masks

    def __getitem__(self, index) -> 'BitmapMasks':
        return BitmapMasks(self.masks[index].reshape(-1, self.height, self.width), self.height,
                           self.width)

    def _map_each(self, func, out_shape: Tuple[int, int]) -> 'BitmapMasks':
        """Apply ``func`` to every (h, w) mask; an empty set just takes ``out_shape``."""
        if len(self) == 0:
            return BitmapMasks([], *out_shape)
        return BitmapMasks(np.stack([func(mask) for mask in self.masks]), *out_shape)

    def rescale(self, scale, interpolation: str = 'nearest') -> 'BitmapMasks':
        new_w, new_h = mmcv.rescale_size((self.width, self.height), scale)
        return self._map_each(
            lambda m: mmcv.imresize(m, (new_w, new_h), interpolation=interpolation), (new_h, new_w))

    def resize(self, out_shape, interpolation: str = 'nearest') -> 'BitmapMasks':
        out_h, out_w = out_shape[:2]
        return self._map_each(
            lambda m: mmcv.imresize(m, (out_w, out_h), interpolation=interpolation),
            (out_h, out_w))

    def flip(self, flip_direction: str = 'horizontal') -> 'BitmapMasks':
        check_flip_direction(flip_direction)
        flipped = np.flip(self.masks, axis=_FLIP_AXES[flip_direction])
        return BitmapMasks(np.ascontiguousarray(flipped), self.height, self.width)

    def pad(self, out_shape, pad_val: int = 0) -> 'BitmapMasks':
        out_h, out_w = out_shape[:2]
        return self._map_each(lambda m: mmcv.impad(m, shape=(out_h, out_w), pad_val=pad_val),
                              (out_h, out_w))

    def crop(self, bbox: np.ndarray) -> 'BitmapMasks':
        x1, y1, x2, y2 = _clip_crop_box(bbox, self.height, self.width)
        width, height = max(x2 - x1, 1), max(y2 - y1, 1)
        if len(self) == 0:
            return BitmapMasks([], height, width)
        return BitmapMasks(self.masks[:, y1:y1 + height, x1:x1 + width], height, width)

    def crop_and_resize(self, bboxes: np.ndarray, out_shape, inds: np.ndarray,
                        device: str = 'cpu', interpolation: str = 'bilinear',
                        binarize: bool = True) -> 'BitmapMasks':
        out_h, out_w = out_shape[:2]
        if len(self) == 0:
            return BitmapMasks([], out_h, out_w)
        boxes = torch.as_tensor(np.asarray(bboxes), dtype=torch.float32, device=device)
        inds = torch.as_tensor(np.asarray(inds), device=device).long()
        if len(boxes) == 0:
            return BitmapMasks([], out_h, out_w)
        rois = torch.cat([torch.arange(len(boxes), device=device, dtype=torch.float32)[:, None],
                          boxes], dim=1)
        selected = torch.as_tensor(self.masks, device=device)[inds].float()[:, None]
        # aligned=True samples at pixel centres, as MMDetection's mask targets do.
        targets = roi_align(selected, rois, (out_h, out_w), spatial_scale=1.0,
                            sampling_ratio=0, aligned=True).squeeze(1)
        targets = (targets >= 0.5) if binarize else targets
        return BitmapMasks(targets.cpu().numpy(), out_h, out_w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> 'BitmapMasks':
        canvas = np.zeros((len(self), expanded_h, expanded_w), dtype=self.masks.dtype)
        canvas[:, top:top + self.height, left:left + self.width] = self.masks
        return BitmapMasks(canvas, expanded_h, expanded_w)

    def translate(self, out_shape, offset: float, direction: str = 'horizontal',
                  border_value: int = 0, interpolation: str = 'bilinear') -> 'BitmapMasks':
        """Shift by ``offset`` pixels; the masks are first cropped/padded to ``out_shape``."""
        out_h, out_w = out_shape[:2]
        if len(self) == 0:
            return BitmapMasks([], out_h, out_w)
        masks = self.masks
        if masks.shape[1:] != (out_h, out_w):
            canvas = np.zeros((len(masks), out_h, out_w), dtype=masks.dtype)
            min_h, min_w = min(out_h, self.height), min(out_w, self.width)
            canvas[:, :min_h, :min_w] = masks[:, :min_h, :min_w]
            masks = canvas
        moved = mmcv.imtranslate(masks.transpose(1, 2, 0), offset, direction,
                                 border_value=border_value, interpolation=interpolation)
        return BitmapMasks(_to_chw(moved).astype(self.masks.dtype), out_h, out_w)

    def shear(self, out_shape, magnitude: float, direction: str = 'horizontal',
              border_value: int = 0, interpolation: str = 'bilinear') -> 'BitmapMasks':
        out_h, out_w = out_shape[:2]
        if len(self) == 0:
            return BitmapMasks([], out_h, out_w)
        sheared = mmcv.imshear(self.masks.transpose(1, 2, 0), magnitude, direction,
                               border_value=border_value, interpolation=interpolation)
        return BitmapMasks(_to_chw(sheared).astype(self.masks.dtype), *sheared.shape[:2])

    def rotate(self, out_shape, angle: float, center=None, scale: float = 1.0,
               border_value: int = 0, interpolation: str = 'bilinear') -> 'BitmapMasks':
        out_h, out_w = out_shape[:2]
        if len(self) == 0:
            return BitmapMasks([], out_h, out_w)
        rotated = mmcv.imrotate(self.masks.transpose(1, 2, 0), angle, center=center,
                                scale=scale, border_value=border_value,
                                interpolation=interpolation)
        return BitmapMasks(_to_chw(rotated).astype(self.masks.dtype), *rotated.shape[:2])

    def warp_perspective(self, matrix: np.ndarray, out_shape) -> 'BitmapMasks':
        """Map through a (3, 3) homography into an (h, w) ``out_shape`` canvas (nearest)."""
        out_h, out_w = out_shape[:2]
        return self._map_each(lambda m: cv2_warp(m, matrix, out_w, out_h), (out_h, out_w))

    @property
    def areas(self) -> np.ndarray:
        return self.masks.sum((1, 2))

    def to_ndarray(self) -> np.ndarray:
        return self.masks

    def to_tensor(self, dtype: torch.dtype, device) -> torch.Tensor:
        return torch.tensor(self.masks, dtype=dtype, device=device)

    def enclosing_boxes(self) -> np.ndarray:
        boxes = np.zeros((len(self), 4), dtype=np.float32)
        if len(self) == 0:
            return boxes
        x_any, y_any = self.masks.any(axis=1), self.masks.any(axis=2)
        nonempty = x_any.any(axis=1)
        width, height = x_any.shape[1], y_any.shape[1]
        # First and last set column/row; +1 so the box reaches the far pixel edge.
        boxes[:, 0] = x_any.argmax(axis=1)
        boxes[:, 1] = y_any.argmax(axis=1)
        boxes[:, 2] = width - x_any[:, ::-1].argmax(axis=1)
        boxes[:, 3] = height - y_any[:, ::-1].argmax(axis=1)
        boxes[~nonempty] = 0
        return boxes

    @classmethod
    def random(cls, num_masks: int = 3, height: int = 32, width: int = 32,
               dtype=np.uint8, rng: Optional[np.random.RandomState] = None) -> 'BitmapMasks':
        """Random masks (about 10% of pixels off), for tests and demos."""
        rng = np.random.RandomState(0) if rng is None else rng
        masks = (rng.rand(num_masks, height, width) > 0.1).astype(dtype)
        return cls(masks, height, width)

    @classmethod
    def cat(cls, masks: Sequence['BitmapMasks']) -> 'BitmapMasks':
        check_cat(cls, masks)
        return cls(np.concatenate([m.masks for m in masks], axis=0), masks[0].height,
                   masks[0].width)


def _clip_crop_box(bbox: np.ndarray, height: int, width: int) -> Tuple[int, int, int, int]:
    bbox = np.asarray(bbox, dtype=np.float64).reshape(-1)
    if bbox.shape != (4,):
        raise AssertionValueError(f'crop: bbox must be (x1, y1, x2, y2), got {bbox!r}.')
    x1, x2 = np.clip(bbox[0::2], 0, width).astype(int)
    y1, y2 = np.clip(bbox[1::2], 0, height).astype(int)
    return int(x1), int(y1), int(x2), int(y2)


def _to_chw(img: np.ndarray) -> np.ndarray:
    """(h, w, N) or, for N == 1, (h, w) from cv2 -> (N, h, w)."""
    return img[None] if img.ndim == 2 else img.transpose(2, 0, 1)


def cv2_warp(mask: np.ndarray, matrix: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Warp one (h, w) mask with nearest sampling and zero border."""
    return cv2.warpPerspective(mask, np.asarray(matrix, np.float64), dsize=(out_w, out_h),
                               flags=cv2.INTER_NEAREST, borderValue=0)
