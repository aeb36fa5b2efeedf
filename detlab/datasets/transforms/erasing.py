"""Occlusion augmentations: CutOut (boxes kept) and RandomErasing (mostly-erased boxes dropped)."""
from typing import List, Optional, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import autocast_box_type
from detlab.structures.mask import BitmapMasks

from .instance_ops import select_instances


def _count_range(value: Union[int, float, tuple], name: str, owner: str) -> tuple:
    """(low, high) from a number or a 2-tuple with 0 <= low < high."""
    if isinstance(value, tuple):
        if len(value) != 2 or not 0 <= value[0] < value[1]:
            raise ValueError(f'{owner}: {name} must be a number or (low, high) with '
                             f'0 <= low < high, got {value}.')
        return value
    return (value, value)


@TRANSFORMS.register_module()
class CutOut(BaseTransform):
    """Fill random rectangles of the image with ``fill_in``; annotations are left as they are.

    Each call cuts a number of holes drawn in ``n_holes``; each hole's top-left
    corner is uniform over the image and its size one of the candidate
    ``cutout_shape`` (w, h) pixels or ``cutout_ratio`` (w, h) fractions.

    Args:
        n_holes (int | tuple[int, int]): Holes per image, or a (min, max) range.
        cutout_shape (tuple | list[tuple], optional): Candidate (w, h) in pixels.
        cutout_ratio (tuple | list[tuple], optional): Candidate (w, h) ratios;
            give exactly one of the two.
        fill_in (tuple): Fill colour. Defaults to (0, 0, 0).
    """

    def __init__(self,
                 n_holes: Union[int, Tuple[int, int]],
                 cutout_shape: Optional[Union[Tuple[int, int], List[Tuple[int, int]]]] = None,
                 cutout_ratio: Optional[Union[Tuple[float, float],
                                              List[Tuple[float, float]]]] = None,
                 fill_in: Union[Tuple[float, float, float], Tuple[int, int, int]] = (0, 0, 0)
                 ) -> None:
        if (cutout_shape is None) == (cutout_ratio is None):
            raise ValueError('CutOut: give exactly one of cutout_shape and cutout_ratio.')
        candidates = cutout_ratio if cutout_shape is None else cutout_shape
        if not isinstance(candidates, (list, tuple)):
            raise TypeError(f'CutOut: cutout_shape/cutout_ratio must be a tuple or list of '
                            f'tuples, got {candidates!r}.')
        self.n_holes = _count_range(n_holes, 'n_holes', 'CutOut')
        self.fill_in = fill_in
        self.with_ratio = cutout_ratio is not None
        self.candidates = candidates if isinstance(candidates, list) else [candidates]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        height, width = results['img'].shape[:2]
        for _ in range(np.random.randint(self.n_holes[0], self.n_holes[1] + 1)):
            x1, y1 = np.random.randint(0, width), np.random.randint(0, height)
            cut_w, cut_h = self.candidates[np.random.randint(0, len(self.candidates))]
            if self.with_ratio:
                cut_w, cut_h = int(cut_w * width), int(cut_h * height)
            x2, y2 = np.clip(x1 + cut_w, 0, width), np.clip(y1 + cut_h, 0, height)
            results['img'][y1:y2, x1:x2, ...] = self.fill_in
        return results

    def __repr__(self) -> str:
        kind = 'cutout_ratio' if self.with_ratio else 'cutout_shape'
        return (f'{type(self).__name__}(n_holes={self.n_holes}, {kind}={self.candidates}, '
                f'fill_in={self.fill_in})')


@TRANSFORMS.register_module()
class RandomErasing(BaseTransform):
    """Erase random patches of the image, masks and seg map; drop boxes mostly erased.

    Patch sides are ``ratio`` (drawn in a (low, high) range; equal for both
    sides when ``squared``) of the image's. A box whose summed overlap with
    the patches covers at least ``bbox_erased_thr`` of its area is dropped
    with its label, flag and mask. Masks must be BitmapMasks.

    Args:
        n_patches (int | tuple[int, int]): Patches per image, or a (min, max) range.
        ratio (float | tuple[float, float]): Patch side ratio, or a range in [0, 1].
        squared (bool): One ratio for both sides. Defaults to True.
        bbox_erased_thr (float): Erased fraction that drops a box. Defaults to 0.9.
        img_border_value (int | float | tuple): Image fill. Defaults to 128.
        mask_border_value (int): Mask fill. Defaults to 0.
        seg_ignore_label (int): Seg map fill. Defaults to 255.
    """

    def __init__(self,
                 n_patches: Union[int, Tuple[int, int]],
                 ratio: Union[float, Tuple[float, float]],
                 squared: bool = True,
                 bbox_erased_thr: float = 0.9,
                 img_border_value: Union[int, float, tuple] = 128,
                 mask_border_value: int = 0,
                 seg_ignore_label: int = 255) -> None:
        self.n_patches = _count_range(n_patches, 'n_patches', 'RandomErasing')
        self.ratio = _count_range(ratio, 'ratio', 'RandomErasing')
        if self.ratio[1] > 1:
            raise ValueError(f'RandomErasing: ratio must lie in [0, 1], got {ratio}.')
        self.squared = squared
        self.bbox_erased_thr = bbox_erased_thr
        self.img_border_value = img_border_value
        self.mask_border_value = mask_border_value
        self.seg_ignore_label = seg_ignore_label

    def _draw_ratio(self) -> float:
        return np.random.random() * (self.ratio[1] - self.ratio[0]) + self.ratio[0]

    @cache_randomness
    def _get_patches(self, img_shape: Tuple[int, int]) -> np.ndarray:
        """(P, 4) int x1, y1, x2, y2 patches inside an (h, w) image."""
        height, width = img_shape[:2]
        patches = []
        for _ in range(np.random.randint(self.n_patches[0], self.n_patches[1] + 1)):
            ratio_h = self._draw_ratio()
            ratio_w = ratio_h if self.squared else self._draw_ratio()
            patch_h, patch_w = int(height * ratio_h), int(width * ratio_w)
            x1 = np.random.randint(0, max(width - patch_w, 1))
            y1 = np.random.randint(0, max(height - patch_h, 1))
            patches.append([x1, y1, x1 + patch_w, y1 + patch_h])
        return np.array(patches, dtype=np.int64).reshape(-1, 4)

    def _drop_erased_boxes(self, results: dict, patches: np.ndarray) -> None:
        boxes = results['gt_bboxes'].numpy()
        left_top = np.maximum(boxes[:, None, :2], patches[:, :2])
        right_bottom = np.minimum(boxes[:, None, 2:], patches[:, 2:])
        inter = np.maximum(right_bottom - left_top, 0).prod(-1)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        select_instances(results, inter.sum(-1) / (areas + 1e-7) < self.bbox_erased_thr)

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        patches = self._get_patches(results['img'].shape[:2])
        masks = results.get('gt_masks')
        if masks is not None and not isinstance(masks, BitmapMasks):
            raise TypeError('RandomErasing: gt_masks must be BitmapMasks; load them with '
                            f'LoadAnnotations(poly2mask=True), got {type(masks).__name__}.')
        for x1, y1, x2, y2 in patches:
            results['img'][y1:y2, x1:x2, ...] = self.img_border_value
        if results.get('gt_bboxes') is not None:
            self._drop_erased_boxes(results, patches)
        if results.get('gt_masks') is not None:
            for x1, y1, x2, y2 in patches:
                results['gt_masks'].masks[:, y1:y2, x1:x2] = self.mask_border_value
        if results.get('gt_seg_map') is not None:
            for x1, y1, x2, y2 in patches:
                results['gt_seg_map'][y1:y2, x1:x2] = self.seg_ignore_label
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(n_patches={self.n_patches}, ratio={self.ratio}, '
                f'squared={self.squared}, bbox_erased_thr={self.bbox_erased_thr}, '
                f'img_border_value={self.img_border_value}, '
                f'mask_border_value={self.mask_border_value}, '
                f'seg_ignore_label={self.seg_ignore_label})')
