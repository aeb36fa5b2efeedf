"""Multi-image augmentations fed by MultiImageMixDataset: Mosaic and MixUp.

The dataset wrapper calls ``get_indexes(dataset)`` and puts the drawn
samples, already through the pipeline steps before this one, in
``results['mix_results']``. The Cached* variants (cached_mix.py) draw from a
cache of recent samples instead and reuse the image arithmetic below.
"""
from typing import List, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from mmengine.dataset import BaseDataset
from numpy import random

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import autocast_box_type

from .instance_ops import select_instances

QUADRANTS = ('top_left', 'top_right', 'bottom_left', 'bottom_right')


def fit_masks(masks, height: int, width: int):
    """Crop or pad masks (bottom/right) to exactly (height, width)."""
    if (masks.height, masks.width) == (height, width):
        return masks
    cropped = masks.crop(np.array([0, 0, min(width, masks.width), min(height, masks.height)]))
    return cropped.pad((height, width))


def move_masks(masks, dx: float, dy: float, out_shape: Tuple[int, int]):
    """Shift masks by (dx, dy) into an (h, w) ``out_shape`` canvas."""
    moved = masks.translate(out_shape=out_shape, offset=dx, direction='horizontal')
    return moved.translate(out_shape=out_shape, offset=dy, direction='vertical')


def cat_instances(results: dict, parts: List[dict], with_mask: bool) -> None:
    """Set results' instance keys to the concatenation of ``parts`` (each with the same keys)."""
    boxes = [part['gt_bboxes'] for part in parts]
    results['gt_bboxes'] = boxes[0].cat(boxes, 0)
    results['gt_bboxes_labels'] = np.concatenate([p['gt_bboxes_labels'] for p in parts], 0)
    results['gt_ignore_flags'] = np.concatenate([p['gt_ignore_flags'] for p in parts], 0)
    if with_mask:
        masks = [part['gt_masks'] for part in parts]
        results['gt_masks'] = masks[0].cat(masks)


@TRANSFORMS.register_module()
class Mosaic(BaseTransform):
    """Tile four images round a random centre on a (2h, 2w) canvas (YOLOX's Mosaic).

    Each image (this sample, then the three in ``mix_results``) is resized
    to fit ``img_scale`` and pasted into its quadrant against the centre,
    drawn in ``center_ratio_range`` times ``img_scale``; parts beyond the
    canvas are cut. Boxes (and masks) move with their image; boxes are
    clipped to the canvas with ``bbox_clip_border``, and those with nothing
    left inside are dropped. Masks are carried too (MMDetection's Mosaic
    carries them only in CachedMosaic).

    Args:
        img_scale (tuple[int, int]): (w, h) of each tile; the canvas is twice it.
        center_ratio_range (tuple[float, float]): Centre range, as a ratio of img_scale.
        bbox_clip_border (bool): Clip boxes to the canvas. Defaults to True.
        pad_val (float): Canvas fill. Defaults to 114.
        prob (float): Probability of applying. Defaults to 1.
    """

    def __init__(self,
                 img_scale: Tuple[int, int] = (640, 640),
                 center_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 bbox_clip_border: bool = True,
                 pad_val: float = 114.0,
                 prob: float = 1.0) -> None:
        if not isinstance(img_scale, tuple):
            raise TypeError(f'Mosaic: img_scale must be a (w, h) tuple, got {img_scale!r}.')
        if not 0 <= prob <= 1:
            raise ValueError(f'Mosaic: prob must lie in [0, 1], got {prob}.')
        self.img_scale = img_scale
        self.center_ratio_range = center_ratio_range
        self.bbox_clip_border = bbox_clip_border
        self.pad_val = pad_val
        self.prob = prob

    @cache_randomness
    def get_indexes(self, dataset: BaseDataset) -> List[int]:
        """Three random dataset indices for the other tiles."""
        return [random.randint(0, len(dataset)) for _ in range(3)]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if random.uniform(0, 1) > self.prob:
            return results
        if len(results.get('mix_results', [])) != 3:
            raise KeyError('Mosaic needs results["mix_results"] with 3 samples; wrap the dataset '
                           'in MultiImageMixDataset (or use CachedMosaic).')
        return self._mosaic(results, results['mix_results'])

    def _mosaic(self, results: dict, others: Sequence[dict]) -> dict:
        scale_w, scale_h = self.img_scale
        canvas_shape = (int(scale_h * 2), int(scale_w * 2))
        img = results['img']
        canvas = np.full(canvas_shape + img.shape[2:], self.pad_val, dtype=img.dtype)
        center = (int(random.uniform(*self.center_ratio_range) * scale_w),
                  int(random.uniform(*self.center_ratio_range) * scale_h))
        with_mask = 'gt_masks' in results
        parts = []
        for loc, patch in zip(QUADRANTS, [results, *others]):
            img_i = patch['img']
            h_i, w_i = img_i.shape[:2]
            ratio = min(scale_h / h_i, scale_w / w_i)
            img_i = mmcv.imresize(img_i, (int(w_i * ratio), int(h_i * ratio)))
            paste, crop = self._mosaic_combine(loc, center, img_i.shape[1::-1])
            canvas[paste[1]:paste[3], paste[0]:paste[2]] = img_i[crop[1]:crop[3], crop[0]:crop[2]]
            pad_w, pad_h = paste[0] - crop[0], paste[1] - crop[1]
            boxes = patch['gt_bboxes'].clone()
            boxes.rescale_([ratio, ratio])
            boxes.translate_([pad_w, pad_h])
            part = dict(gt_bboxes=boxes, gt_bboxes_labels=patch['gt_bboxes_labels'],
                        gt_ignore_flags=patch['gt_ignore_flags'])
            if with_mask:
                part['gt_masks'] = move_masks(patch['gt_masks'].rescale(float(ratio)), pad_w,
                                              pad_h, canvas_shape)
            parts.append(part)
        cat_instances(results, parts, with_mask)
        if self.bbox_clip_border:
            results['gt_bboxes'].clip_(canvas_shape)
        select_instances(results, results['gt_bboxes'].is_inside(canvas_shape).numpy())
        results['img'] = canvas
        results['img_shape'] = canvas.shape[:2]
        return results

    def _mosaic_combine(self, loc: str, center: Tuple[int, int],
                        img_wh: Tuple[int, int]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
        """(x1, y1, x2, y2) paste region on the canvas and crop region of the tile."""
        cx, cy = center
        w, h = img_wh
        max_x, max_y = self.img_scale[0] * 2, self.img_scale[1] * 2
        if loc == 'top_left':
            x1, y1, x2, y2 = max(cx - w, 0), max(cy - h, 0), cx, cy
            crop = (w - (x2 - x1), h - (y2 - y1), w, h)
        elif loc == 'top_right':
            x1, y1, x2, y2 = cx, max(cy - h, 0), min(cx + w, max_x), cy
            crop = (0, h - (y2 - y1), min(w, x2 - x1), h)
        elif loc == 'bottom_left':
            x1, y1, x2, y2 = max(cx - w, 0), cy, cx, min(max_y, cy + h)
            crop = (w - (x2 - x1), 0, w, min(y2 - y1, h))
        elif loc == 'bottom_right':
            x1, y1, x2, y2 = cx, cy, min(cx + w, max_x), min(max_y, cy + h)
            crop = (0, 0, min(w, x2 - x1), min(y2 - y1, h))
        else:
            raise ValueError(f'Mosaic: unknown quadrant {loc!r}, expected one of {QUADRANTS}.')
        return (x1, y1, x2, y2), crop

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(img_scale={self.img_scale}, '
                f'center_ratio_range={self.center_ratio_range}, pad_val={self.pad_val}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class MixUp(BaseTransform):
    """Blend this image 50/50 with another, jittered in scale and maybe flipped (YOLOX's MixUp).

    The other sample (``mix_results[0]``) is resized to fit ``img_scale``,
    scaled by a factor drawn in ``ratio_range``, flipped horizontally with
    probability ``1 - flip_ratio`` (MMDetection's rule), and a random window
    of this image's size is cut from it. Both samples' instances are kept
    (boxes clipped with ``bbox_clip_border``, those left outside dropped). A
    partner without boxes leaves the sample unchanged.

    Args:
        img_scale (tuple[int, int]): (w, h) the partner is fitted into.
        ratio_range (tuple[float, float]): Scale jitter range.
        flip_ratio (float): See above. Defaults to 0.5.
        pad_val (float): Fill value. Defaults to 114.
        max_iters (int): Draws in ``get_indexes`` to find a partner with boxes.
        bbox_clip_border (bool): Clip boxes. Defaults to True.
    """

    def __init__(self,
                 img_scale: Tuple[int, int] = (640, 640),
                 ratio_range: Tuple[float, float] = (0.5, 1.5),
                 flip_ratio: float = 0.5,
                 pad_val: float = 114.0,
                 max_iters: int = 15,
                 bbox_clip_border: bool = True) -> None:
        if not isinstance(img_scale, tuple):
            raise TypeError(f'{type(self).__name__}: img_scale must be a (w, h) tuple, got '
                            f'{img_scale!r}.')
        self.dynamic_scale = img_scale
        self.ratio_range = ratio_range
        self.flip_ratio = flip_ratio
        self.pad_val = pad_val
        self.max_iters = max_iters
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def get_indexes(self, dataset: BaseDataset) -> int:
        """A random index, redrawn up to ``max_iters`` times until its sample has boxes."""
        for _ in range(self.max_iters):
            index = random.randint(0, len(dataset))
            if len(dataset[index]['gt_bboxes']) != 0:
                break
        return index

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if len(results.get('mix_results', [])) != 1:
            raise KeyError('MixUp needs results["mix_results"] with exactly 1 sample; wrap the '
                           'dataset in MultiImageMixDataset (or use CachedMixUp).')
        retrieve = results['mix_results'][0]
        if len(retrieve['gt_bboxes']) == 0:
            return results
        return self._mixup(results, retrieve)

    def _mixup(self, results: dict, retrieve: dict) -> dict:
        jit_factor = random.uniform(*self.ratio_range)
        is_flip = random.uniform(0, 1) > self.flip_ratio
        scale_w, scale_h = self.dynamic_scale
        retrieve_img = retrieve['img']
        # A float canvas, resized and then truncated into uint8 below, as MMDetection does.
        out_img = np.ones((scale_h, scale_w) + retrieve_img.shape[2:],
                          dtype=retrieve_img.dtype) * self.pad_val
        ratio = min(scale_h / retrieve_img.shape[0], scale_w / retrieve_img.shape[1])
        retrieve_img = mmcv.imresize(retrieve_img, (int(retrieve_img.shape[1] * ratio),
                                                    int(retrieve_img.shape[0] * ratio)))
        out_img[:retrieve_img.shape[0], :retrieve_img.shape[1]] = retrieve_img
        ratio *= jit_factor
        out_img = mmcv.imresize(out_img, (int(out_img.shape[1] * jit_factor),
                                          int(out_img.shape[0] * jit_factor)))
        if is_flip:
            out_img = out_img[:, ::-1]
        ori_img = results['img']
        origin_h, origin_w = out_img.shape[:2]
        target_h, target_w = ori_img.shape[:2]
        padded = np.full((max(origin_h, target_h), max(origin_w, target_w)) + ori_img.shape[2:],
                         self.pad_val, dtype=np.uint8)
        padded[:origin_h, :origin_w] = out_img
        y_offset = random.randint(0, padded.shape[0] - target_h) if padded.shape[0] > target_h \
            else 0
        x_offset = random.randint(0, padded.shape[1] - target_w) if padded.shape[1] > target_w \
            else 0
        window = padded[y_offset:y_offset + target_h, x_offset:x_offset + target_w]

        boxes = retrieve['gt_bboxes'].clone()
        boxes.rescale_([ratio, ratio])
        if self.bbox_clip_border:
            boxes.clip_((origin_h, origin_w))
        if is_flip:
            boxes.flip_((origin_h, origin_w), direction='horizontal')
        boxes.translate_([-x_offset, -y_offset])
        if self.bbox_clip_border:
            boxes.clip_((target_h, target_w))
        with_mask = 'gt_masks' in results
        part = dict(gt_bboxes=boxes, gt_bboxes_labels=retrieve['gt_bboxes_labels'],
                    gt_ignore_flags=retrieve['gt_ignore_flags'])
        if with_mask:
            masks = fit_masks(retrieve['gt_masks'].rescale(ratio), origin_h, origin_w)
            if is_flip:
                masks = masks.flip('horizontal')
            part['gt_masks'] = move_masks(masks, -x_offset, -y_offset, (target_h, target_w))
        own = {key: results[key] for key in part}
        cat_instances(results, [own, part], with_mask)
        select_instances(results, results['gt_bboxes'].is_inside((target_h, target_w)).numpy())
        mixed = 0.5 * ori_img.astype(np.float32) + 0.5 * window.astype(np.float32)
        results['img'] = mixed.astype(np.uint8)
        results['img_shape'] = mixed.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dynamic_scale={self.dynamic_scale}, '
                f'ratio_range={self.ratio_range}, flip_ratio={self.flip_ratio}, '
                f'pad_val={self.pad_val}, max_iters={self.max_iters}, '
                f'bbox_clip_border={self.bbox_clip_border})')
