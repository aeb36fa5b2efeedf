"""Resize, RandomFlip and Pad: moving gt boxes and masks with the image."""
import bisect
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
from mmcv.transforms import Pad as MMCV_Pad
from mmcv.transforms import RandomFlip as MMCV_RandomFlip
from mmcv.transforms import Resize as MMCV_Resize
from mmcv.transforms.base import BaseTransform
from mmcv.transforms.utils import cache_randomness

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import FLIP_DIRECTIONS, autocast_box_type

from .instance_ops import record_homography

#: What mmcv's image resizing accepts, per backend.
RESIZE_INTERPOLATIONS = {
    'cv2': ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos'),
    'pillow': ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming'),
}


@TRANSFORMS.register_module()
class Resize(MMCV_Resize):
    """Resize the image to ``scale`` or by ``scale_factor``, and its annotations with it.

    With ``keep_ratio=True`` the image is scaled by one factor, the largest
    that fits its long side within ``max(scale)`` and its short side within
    ``min(scale)``; otherwise to exactly ``scale`` = (w, h). Sets ``img``,
    ``img_shape`` (h, w), ``scale`` (w, h), ``scale_factor`` (w_scale, h_scale)
    and ``keep_ratio``; rescales ``gt_bboxes`` (and, with
    ``clip_object_border``, clips them to the new image), ``gt_masks`` and
    ``gt_seg_map``, and composes ``diag(w_scale, h_scale, 1)`` onto
    ``homography_matrix``. Works as the inner resize of mmcv's
    ``RandomResize`` and ``RandomChoiceResize``.

    Args:
        scale (int | tuple[int, int], optional): Target (w, h); an int means square.
        scale_factor (float | tuple[float, float], optional): Used when
            ``scale`` is None.
        keep_ratio (bool): Keep the aspect ratio. Defaults to False.
        clip_object_border (bool): Clip boxes to the image. Defaults to True.
        backend (str): ``'cv2'`` or ``'pillow'``.
        interpolation (str): e.g. ``'bilinear'`` (see :data:`RESIZE_INTERPOLATIONS`).
    """

    def __init__(self,
                 scale: Optional[Union[int, Tuple[int, int]]] = None,
                 scale_factor: Optional[Union[float, Tuple[float, float]]] = None,
                 keep_ratio: bool = False,
                 clip_object_border: bool = True,
                 backend: str = 'cv2',
                 interpolation: str = 'bilinear') -> None:
        if scale is None and scale_factor is None:
            raise ValueError('Resize: give scale=(w, h) or scale_factor; both are None.')
        if backend not in RESIZE_INTERPOLATIONS:
            raise ValueError(f'Resize: backend={backend!r}, expected one of '
                             f'{tuple(RESIZE_INTERPOLATIONS)}.')
        if interpolation not in RESIZE_INTERPOLATIONS[backend]:
            raise ValueError(f'Resize: interpolation={interpolation!r} is not available with '
                             f"backend '{backend}'; use one of {RESIZE_INTERPOLATIONS[backend]}.")
        if isinstance(scale_factor, (int, float)):
            scale_factor = (float(scale_factor), float(scale_factor))
        elif scale_factor is not None:
            scale_factor = tuple(float(f) for f in scale_factor)
        if isinstance(scale, list):  # configs loaded from JSON/YAML give lists
            scale = tuple(scale)
        super().__init__(scale=scale, scale_factor=scale_factor, keep_ratio=keep_ratio,
                         clip_object_border=clip_object_border, backend=backend,
                         interpolation=interpolation)

    def _resize_bboxes(self, results: dict) -> None:
        if results.get('gt_bboxes') is None:
            return
        results['gt_bboxes'].rescale_(results['scale_factor'])
        if self.clip_object_border:
            results['gt_bboxes'].clip_(results['img_shape'])

    def _resize_masks(self, results: dict) -> None:
        if results.get('gt_masks') is None:
            return
        if self.keep_ratio:
            results['gt_masks'] = results['gt_masks'].rescale(results['scale'])
        else:
            results['gt_masks'] = results['gt_masks'].resize(results['img_shape'])

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        if self.scale:
            results['scale'] = self.scale
        else:
            height, width = results['img'].shape[:2]
            w_factor, h_factor = self.scale_factor
            # Rounded as mmcv's own Resize rounds a scale_factor target.
            results['scale'] = (int(width * w_factor + 0.5), int(height * h_factor + 0.5))
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        w_scale, h_scale = results['scale_factor']
        record_homography(results, np.array([[w_scale, 0, 0], [0, h_scale, 0], [0, 0, 1]],
                                            np.float32))
        return results


#: cv2.flip codes of the flip directions.
CV2_FLIP_CODES = {'horizontal': 1, 'vertical': 0, 'diagonal': -1}


def flip_image(img: np.ndarray, direction: str) -> np.ndarray:
    """The image mirrored as ``mmcv.imflip`` mirrors it, as a contiguous array.

    ``mmcv.imflip`` returns a negatively strided view, which every later step
    (and the final HWC -> CHW copy) then reads slowly; cv2.flip writes a
    contiguous copy with SIMD. Dtypes cv2 cannot take go through mmcv.
    """
    if img.dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64) and (
            img.ndim == 2 or img.shape[2] <= 4):
        return cv2.flip(img, CV2_FLIP_CODES[direction])
    return mmcv.imflip(img, direction=direction)


def flip_homography(direction: Optional[str], height: int, width: int) -> np.ndarray:
    """(3, 3) matrix of a flip inside an (height, width) image; identity for None."""
    flip_x = direction in ('horizontal', 'diagonal')
    flip_y = direction in ('vertical', 'diagonal')
    return np.array([[-1 if flip_x else 1, 0, width if flip_x else 0],
                     [0, -1 if flip_y else 1, height if flip_y else 0], [0, 0, 1]], np.float32)


@TRANSFORMS.register_module()
class RandomFlip(MMCV_RandomFlip):
    """Flip the image and its annotations, at random.

    ``prob`` and ``direction`` as in mmcv: a float and one direction flips with
    that probability; a float and a list of directions splits it evenly; a
    list of floats gives each direction its own probability. Directions:
    ``'horizontal'``, ``'vertical'``, ``'diagonal'``. Sets ``flip`` (bool) and
    ``flip_direction`` (str or None); a flip moves ``gt_bboxes``, ``gt_masks``
    and ``gt_seg_map`` and composes its matrix onto ``homography_matrix``.

    Args:
        prob (float | list[float]): Flip probability (ints such as 1 are accepted).
        direction (str | list[str]): Flip direction(s).
    """

    def __init__(self,
                 prob: Union[float, Sequence[float]],
                 direction: Union[str, Sequence[str]] = 'horizontal',
                 **kwargs) -> None:
        directions = [direction] if isinstance(direction, str) else list(direction)
        bad = [d for d in directions if d not in FLIP_DIRECTIONS]
        if bad:
            raise ValueError(f'RandomFlip: direction {bad} is not valid; use '
                             f'{FLIP_DIRECTIONS} or a list of them.')
        if isinstance(prob, (int, float)):
            prob = float(prob)
            total = prob
        else:
            prob = [float(p) for p in prob]
            total = sum(prob)
            if len(prob) != len(directions):
                raise ValueError(f'RandomFlip: {len(prob)} probabilities for '
                                 f'{len(directions)} directions {directions}.')
        if not 0 <= total <= 1 or (isinstance(prob, list) and min(prob) < 0):
            raise ValueError(f'RandomFlip: prob={prob} must lie in [0, 1] (in total, and each '
                             'probability at least 0).')
        super().__init__(prob=prob, direction=direction if isinstance(direction, str)
                         else directions, **kwargs)

    def _draw_table(self) -> Tuple[List[Optional[str]], List[float]]:
        """The choices (the directions, then None for no flip) and their cumulative
        probabilities, built as ``np.random.choice`` builds them from mmcv's lists, for
        the current ``prob`` and ``direction``."""
        key = (tuple(self.prob) if isinstance(self.prob, list) else self.prob,
               self.direction if isinstance(self.direction, str) else tuple(self.direction))
        if getattr(self, '_table_key', None) != key:
            choices = ([self.direction] if isinstance(self.direction, str) else
                       list(self.direction)) + [None]
            if isinstance(self.prob, list):
                probs = self.prob + [1 - sum(self.prob)]
            else:
                probs = [self.prob / (len(choices) - 1)] * (len(choices) - 1) + [1. - self.prob]
            cdf = np.asarray(probs, dtype=np.float64).cumsum()
            cdf /= cdf[-1]
            self._table_key, self._table = key, (choices, cdf.tolist())
        return self._table

    @cache_randomness
    def _choose_direction(self) -> Optional[str]:
        """mmcv's draw without ``np.random.choice``'s checks on every call (a third of
        the transform's time): one ``np.random.random_sample()`` looked up in the
        cumulative probabilities, as ``choice`` draws it, so a seed gives the same
        directions and leaves NumPy's generator in the same state."""
        choices, cdf = self._draw_table()
        return choices[bisect.bisect_right(cdf, np.random.random_sample())]

    @autocast_box_type()
    def _flip(self, results: dict) -> None:
        direction = results['flip_direction']
        results['img'] = flip_image(results['img'], direction)
        img_shape = results['img'].shape[:2]
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].flip_(img_shape, direction)
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].flip(direction)
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = mmcv.imflip(results['gt_seg_map'], direction=direction)
        record_homography(results, flip_homography(direction, *img_shape))


@TRANSFORMS.register_module()
class Pad(MMCV_Pad):
    """Pad the image (bottom and right) to ``size`` or to a multiple of ``size_divisor``.

    mmcv's Pad (``size`` (w, h), ``size_divisor``, ``pad_to_square``,
    ``pad_val=dict(img=0, seg=255)``, ``padding_mode``), plus ``gt_masks``
    padded to ``pad_shape`` with ``pad_val['masks']`` (default 0). Boxes do
    not move. Sets ``pad_shape``, ``pad_fixed_size``, ``pad_size_divisor``.
    """

    def _pad_masks(self, results: dict) -> None:
        if results.get('gt_masks') is not None:
            pad_val = self.pad_val.get('masks', 0) if isinstance(self.pad_val, dict) else 0
            results['gt_masks'] = results['gt_masks'].pad(results['pad_shape'][:2],
                                                          pad_val=pad_val)

    def transform(self, results: dict) -> dict:
        self._pad_img(results)
        self._pad_seg(results)
        self._pad_masks(results)
        return results


@TRANSFORMS.register_module()
class SegRescale(BaseTransform):
    """Rescale ``gt_seg_map`` by ``scale_factor`` with nearest-neighbour
    sampling (labels are not interpolated), as MMDetection's SegRescale.

    Args:
        scale_factor (float): Scale of the map; 1 leaves it as it is.
        backend (str): mmcv's ``imrescale`` backend, 'cv2' or 'pillow'
            (their roundings differ slightly).
    """

    def __init__(self, scale_factor: float = 1, backend: str = 'cv2') -> None:
        if not scale_factor > 0:
            raise ValueError(f'SegRescale: scale_factor must be positive, got {scale_factor!r}')
        if backend not in ('cv2', 'pillow'):
            raise ValueError(f"SegRescale: backend must be 'cv2' or 'pillow', got {backend!r}")
        self.scale_factor = scale_factor
        self.backend = backend

    def transform(self, results: dict) -> dict:
        if self.scale_factor != 1:
            if results.get('gt_seg_map') is None:
                raise KeyError(f"SegRescale: {results.get('img_path', 'the sample')!r} has no "
                               "gt_seg_map; load it with LoadAnnotations(with_seg=True).")
            results['gt_seg_map'] = mmcv.imrescale(results['gt_seg_map'], self.scale_factor,
                                                   interpolation='nearest',
                                                   backend=self.backend)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(scale_factor={self.scale_factor}, backend={self.backend})'
