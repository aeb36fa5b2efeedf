"""Cropping and expanding: RandomCrop, MinIoURandomCrop, Expand."""
from numbers import Number
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from numpy import random

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import HorizontalBoxes, autocast_box_type

from .instance_ops import record_homography, select_instances

CROP_TYPES = ('relative_range', 'relative', 'absolute', 'absolute_range')


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Crop a random window of the image, keeping the instances that stay in it.

    ``crop_size`` reads by ``crop_type``: ``'absolute'`` (w, h) pixels;
    ``'absolute_range'`` (min, max) pixels drawn per side; ``'relative'``
    (w_ratio, h_ratio) of the image; ``'relative_range'`` (h_ratio, w_ratio),
    each drawn in [ratio, 1] (MMDetection's order for this type). The window
    never exceeds the image. Boxes are shifted (and,
    with ``bbox_clip_border``, clipped); instances with no part left are
    dropped with their labels, flags and masks; masks are cropped (and, with
    ``recompute_bbox``, give the new boxes). Returns None when no box is left
    and ``allow_negative_crop`` is False (the dataset then draws another
    sample). Composes the shift onto ``homography_matrix``.

    Args:
        crop_size (tuple): See above.
        crop_type (str): One of :data:`CROP_TYPES`. Defaults to 'absolute'.
        allow_negative_crop (bool): Keep crops without boxes. Defaults to False.
        recompute_bbox (bool): Boxes from the cropped masks. Defaults to False.
        bbox_clip_border (bool): Clip boxes to the crop. Defaults to True.
    """

    def __init__(self,
                 crop_size: tuple,
                 crop_type: str = 'absolute',
                 allow_negative_crop: bool = False,
                 recompute_bbox: bool = False,
                 bbox_clip_border: bool = True) -> None:
        if crop_type not in CROP_TYPES:
            raise ValueError(f'RandomCrop: crop_type={crop_type!r}, expected one of {CROP_TYPES}.')
        if crop_type in ('absolute', 'absolute_range'):
            if not all(isinstance(s, int) and s > 0 for s in crop_size):
                raise ValueError(f'RandomCrop: {crop_type} crop_size must be positive ints, got '
                                 f'{crop_size}.')
            if crop_type == 'absolute_range' and crop_size[0] > crop_size[1]:
                raise ValueError(f'RandomCrop: absolute_range needs min <= max, got {crop_size}.')
        elif not all(0 < s <= 1 for s in crop_size):
            raise ValueError(f'RandomCrop: {crop_type} crop_size must lie in (0, 1], got '
                             f'{crop_size}.')
        self.crop_size = crop_size
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        return np.random.randint(0, margin[0] + 1), np.random.randint(0, margin[1] + 1)

    @cache_randomness
    def _get_crop_size(self, image_size: Tuple[int, int]) -> Tuple[int, int]:
        """(crop_h, crop_w) in pixels for an (h, w) image."""
        height, width = image_size
        if self.crop_type == 'absolute':
            return min(self.crop_size[1], height), min(self.crop_size[0], width)
        if self.crop_type == 'absolute_range':
            low, high = self.crop_size
            return (np.random.randint(min(height, low), min(height, high) + 1),
                    np.random.randint(min(width, low), min(width, high) + 1))
        if self.crop_type == 'relative':
            ratio_w, ratio_h = self.crop_size
        else:
            # MMDetection reads the first relative_range entry as the height ratio.
            ratios = np.asarray(self.crop_size, dtype=np.float32)
            ratio_h, ratio_w = ratios + np.random.rand(2) * (1 - ratios)
        return int(height * ratio_h + 0.5), int(width * ratio_w + 0.5)

    def _crop_data(self, results: dict, crop_size: Tuple[int, int],
                   allow_negative_crop: bool) -> Optional[dict]:
        img = results['img']
        margin = (max(img.shape[0] - crop_size[0], 0), max(img.shape[1] - crop_size[1], 0))
        offset_h, offset_w = self._rand_offset(margin)
        y1, x1 = offset_h, offset_w
        y2, x2 = y1 + crop_size[0], x1 + crop_size[1]
        record_homography(results, [[1, 0, -offset_w], [0, 1, -offset_h], [0, 0, 1]])
        img = img[y1:y2, x1:x2, ...]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        if results.get('gt_bboxes') is not None:
            boxes = results['gt_bboxes']
            boxes.translate_([-offset_w, -offset_h])
            if self.bbox_clip_border:
                boxes.clip_(img.shape[:2])
            valid = boxes.is_inside(img.shape[:2]).numpy()
            if not valid.any() and not allow_negative_crop:
                return None
            select_instances(results, valid)
            if results.get('gt_masks') is not None:
                results['gt_masks'] = results['gt_masks'].crop(np.array([x1, y1, x2, y2]))
                if self.recompute_bbox:
                    results['gt_bboxes'] = results['gt_masks'].get_bboxes(
                        type(results['gt_bboxes']))
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y1:y2, x1:x2]
        return results

    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        crop_size = self._get_crop_size(results['img'].shape[:2])
        return self._crop_data(results, crop_size, self.allow_negative_crop)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, crop_type={self.crop_type}, '
                f'allow_negative_crop={self.allow_negative_crop}, '
                f'recompute_bbox={self.recompute_bbox}, bbox_clip_border={self.bbox_clip_border})')


@TRANSFORMS.register_module()
class MinIoURandomCrop(BaseTransform):
    """SSD's crop: a random patch whose IoU with every gt box is at least a drawn minimum.

    Each call draws a mode from ``(1, *min_ious, 0)``: 1 leaves the sample
    as it is; otherwise up to 50 patches of side at least ``min_crop_size``
    of the image (aspect ratio in [0.5, 2]) are tried until one overlaps every
    box by ``min_iou`` and holds at least one box centre; boxes whose centre
    lies outside are dropped with their labels, flags and masks, the rest
    shifted (and clipped with ``bbox_clip_border``). With no boxes any patch
    is taken.

    Args:
        min_ious (Sequence[float]): Minimum IoUs to draw from.
        min_crop_size (float): Smallest patch side as a fraction of the image.
        bbox_clip_border (bool): Clip boxes to the patch. Defaults to True.
    """

    def __init__(self,
                 min_ious: Sequence[float] = (0.1, 0.3, 0.5, 0.7, 0.9),
                 min_crop_size: float = 0.3,
                 bbox_clip_border: bool = True) -> None:
        if not 0 < min_crop_size <= 1:
            raise ValueError(f'MinIoURandomCrop: min_crop_size must lie in (0, 1], got '
                             f'{min_crop_size}.')
        self.min_ious = min_ious
        self.sample_mode = (1, *min_ious, 0)
        self.min_crop_size = min_crop_size
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def _random_mode(self) -> Number:
        return random.choice(self.sample_mode)

    def _try_patch(self, boxes: HorizontalBoxes, height: int, width: int,
                   min_iou: float) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """A patch (x1, y1, x2, y2) ints and the (N,) bool of boxes centred inside, or None."""
        new_w = random.uniform(self.min_crop_size * width, width)
        new_h = random.uniform(self.min_crop_size * height, height)
        if not 0.5 <= new_h / new_w <= 2:
            return None
        # numpy's uniform(x) draws between x and 1; MMDetection draws the corner this way
        # (so it rarely sits at 0), and the same draws give the same crops.
        left, top = random.uniform(width - new_w), random.uniform(height - new_h)
        patch = np.array((int(left), int(top), int(left + new_w), int(top + new_h)))
        if patch[2] == patch[0] or patch[3] == patch[1]:
            return None
        if len(boxes) == 0:
            return patch, np.zeros(0, dtype=bool)
        overlaps = boxes.overlaps(HorizontalBoxes(patch.reshape(1, 4).astype(np.float32)),
                                  boxes).numpy().reshape(-1)
        if overlaps.min() < min_iou:
            return None
        centers = boxes.centers.numpy()
        inside = ((centers[:, 0] > patch[0]) & (centers[:, 1] > patch[1])
                  & (centers[:, 0] < patch[2]) & (centers[:, 1] < patch[3]))
        return (patch, inside) if inside.any() else None

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if 'gt_bboxes' not in results:
            raise KeyError('MinIoURandomCrop needs gt_bboxes; put LoadAnnotations before it.')
        height, width = results['img'].shape[:2]
        while True:
            mode = self._random_mode()
            if mode == 1:
                return results
            for _ in range(50):
                found = self._try_patch(results['gt_bboxes'], height, width, mode)
                if found is not None:
                    self._apply(results, *found)
                    return results

    def _apply(self, results: dict, patch: np.ndarray, inside: np.ndarray) -> None:
        x1, y1, x2, y2 = (int(v) for v in patch)
        if len(results['gt_bboxes']):
            select_instances(results, inside)
            results['gt_bboxes'].translate_([-x1, -y1])
            if self.bbox_clip_border:
                results['gt_bboxes'].clip_((y2 - y1, x2 - x1))
            if results.get('gt_masks') is not None:
                results['gt_masks'] = results['gt_masks'].crop(patch)
        results['img'] = results['img'][y1:y2, x1:x2]
        results['img_shape'] = results['img'].shape[:2]
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = results['gt_seg_map'][y1:y2, x1:x2]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_ious={self.min_ious}, '
                f'min_crop_size={self.min_crop_size}, bbox_clip_border={self.bbox_clip_border})')


@TRANSFORMS.register_module()
class Expand(BaseTransform):
    """Place the image at a random spot of a canvas ``ratio`` times larger, filled with ``mean``.

    With probability ``prob``; ``ratio`` drawn in ``ratio_range``. Boxes and
    masks shift with the image; ``gt_seg_map`` is filled with
    ``seg_ignore_label`` around it.

    Args:
        mean (Sequence[Number]): Fill colour, in the image's channel order
            unless ``to_rgb`` (then given as RGB and reversed for a BGR image).
        to_rgb (bool): See ``mean``. Defaults to True.
        ratio_range (Sequence[Number]): (min, max) canvas/image side ratio.
        seg_ignore_label (int, optional): Fill of the seg map.
        prob (float): Probability of expanding. Defaults to 0.5.
    """

    def __init__(self,
                 mean: Sequence[Number] = (0, 0, 0),
                 to_rgb: bool = True,
                 ratio_range: Sequence[Number] = (1, 4),
                 seg_ignore_label: Optional[int] = None,
                 prob: float = 0.5) -> None:
        self.to_rgb = to_rgb
        self.ratio_range = ratio_range
        self.mean = list(mean)[::-1] if to_rgb else list(mean)
        self.min_ratio, self.max_ratio = ratio_range
        if self.min_ratio < 1:
            raise ValueError(f'Expand: ratio_range must start at 1 or more, got {ratio_range}.')
        self.seg_ignore_label = seg_ignore_label
        self.prob = prob

    @cache_randomness
    def _random_prob(self) -> float:
        return random.uniform(0, 1)

    @cache_randomness
    def _random_ratio(self) -> float:
        return random.uniform(self.min_ratio, self.max_ratio)

    @cache_randomness
    def _random_left_top(self, ratio: float, height: int, width: int) -> Tuple[int, int]:
        return (int(random.uniform(0, width * ratio - width)),
                int(random.uniform(0, height * ratio - height)))

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if self._random_prob() > self.prob:
            return results
        img = results['img']
        height, width, channels = img.shape
        ratio = self._random_ratio()
        out_h, out_w = int(height * ratio), int(width * ratio)
        canvas = np.empty((out_h, out_w, channels), img.dtype)
        canvas[...] = np.asarray(self.mean, dtype=img.dtype)
        left, top = self._random_left_top(ratio, height, width)
        canvas[top:top + height, left:left + width] = img
        results['img'] = canvas
        results['img_shape'] = canvas.shape[:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].translate_([left, top])
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].expand(out_h, out_w, top, left)
        if results.get('gt_seg_map') is not None:
            seg = results['gt_seg_map']
            expanded = np.full((out_h, out_w), self.seg_ignore_label, dtype=seg.dtype)
            expanded[top:top + height, left:left + width] = seg
            results['gt_seg_map'] = expanded
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(mean={self.mean}, to_rgb={self.to_rgb}, '
                f'ratio_range={self.ratio_range}, seg_ignore_label={self.seg_ignore_label}, '
                f'prob={self.prob})')
