"""Geometric transforms that keep gt boxes in step with the image."""
from typing import Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import RandomFlip as MMCV_RandomFlip
from mmcv.transforms import Resize as MMCV_Resize

from detlab.registry import TRANSFORMS

#: What mmcv's image resizing accepts, per backend.
RESIZE_INTERPOLATIONS = {
    'cv2': ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos'),
    'pillow': ('nearest', 'bilinear', 'bicubic', 'box', 'lanczos', 'hamming'),
}
FLIP_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


@TRANSFORMS.register_module()
class Resize(MMCV_Resize):
    """Resize the image to ``scale`` or by ``scale_factor``, and its gt boxes with it.

    With ``keep_ratio=True`` the image is scaled by one factor, the largest
    that fits its long side within ``max(scale)`` and its short side within
    ``min(scale)``; otherwise to exactly ``scale`` = (w, h). Sets ``img``,
    ``img_shape`` (h, w), ``scale`` (w, h), ``scale_factor`` (w_scale, h_scale)
    and ``keep_ratio``; ``gt_bboxes`` (N, 4) float32 are scaled and, with
    ``clip_object_border``, clipped to the new image. Works as the inner resize
    of mmcv's ``RandomResize`` and ``RandomChoiceResize``.

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
        bboxes = results.get('gt_bboxes')
        if bboxes is None:
            return
        w_scale, h_scale = results['scale_factor']
        scaled = bboxes * np.array([w_scale, h_scale, w_scale, h_scale], dtype=bboxes.dtype)
        if self.clip_object_border:
            height, width = results['img_shape']
            scaled[:, 0::2] = scaled[:, 0::2].clip(0, width)
            scaled[:, 1::2] = scaled[:, 1::2].clip(0, height)
        results['gt_bboxes'] = scaled


@TRANSFORMS.register_module()
class RandomFlip(MMCV_RandomFlip):
    """Flip the image and its gt boxes, at random.

    ``prob`` and ``direction`` as in mmcv: a float and one direction flips with
    that probability; a float and a list of directions splits it evenly; a
    list of floats gives each direction its own probability. Directions:
    ``'horizontal'``, ``'vertical'``, ``'diagonal'``. Sets ``flip`` (bool) and
    ``flip_direction`` (str or None); boxes stay float32 (N, 4).

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
        if not 0 <= total <= 1:
            raise ValueError(f'RandomFlip: prob={prob} must lie in [0, 1] (in total).')
        super().__init__(prob=prob, direction=direction if isinstance(direction, str)
                         else directions, **kwargs)
