"""Colour augmentations: PhotoMetricDistortion (SSD) and YOLOXHSVRandomAug. Boxes do not move."""
from numbers import Number
from typing import Sequence

import cv2
import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from numpy import random

from detlab.registry import TRANSFORMS

#: OpenCV stores 8-bit hue in [0, 180).
CV2_HUE_RANGE = 180


@TRANSFORMS.register_module()
class PhotoMetricDistortion(BaseTransform):
    """Random brightness, contrast, saturation, hue and channel swap, each with probability 0.5.

    Order: brightness; contrast (first or, at random, after the HSV steps);
    saturation; hue; channel swap. The image comes out float32 (not clipped),
    as in MMDetection. Expects a BGR (H, W, 3) image.

    Args:
        brightness_delta (int): Added value drawn in [-delta, delta].
        contrast_range (Sequence[Number]): Multiplier range.
        saturation_range (Sequence[Number]): Saturation multiplier range.
        hue_delta (int): Hue shift in degrees, drawn in [-delta, delta].
    """

    def __init__(self,
                 brightness_delta: int = 32,
                 contrast_range: Sequence[Number] = (0.5, 1.5),
                 saturation_range: Sequence[Number] = (0.5, 1.5),
                 hue_delta: int = 18) -> None:
        self.brightness_delta = brightness_delta
        self.contrast_lower, self.contrast_upper = contrast_range
        self.saturation_lower, self.saturation_upper = saturation_range
        self.hue_delta = hue_delta

    @cache_randomness
    def _random_flags(self) -> dict:
        return dict(
            contrast_first=random.randint(2) == 1,
            brightness=random.randint(2) == 1,
            contrast=random.randint(2) == 1,
            saturation=random.randint(2) == 1,
            hue=random.randint(2) == 1,
            swap=random.randint(2) == 1,
            delta=random.uniform(-self.brightness_delta, self.brightness_delta),
            alpha=random.uniform(self.contrast_lower, self.contrast_upper),
            saturation_value=random.uniform(self.saturation_lower, self.saturation_upper),
            hue_value=random.uniform(-self.hue_delta, self.hue_delta),
            permutation=random.permutation(3))

    def transform(self, results: dict) -> dict:
        img = results['img'].astype(np.float32)
        flags = self._random_flags()
        if flags['brightness']:
            img += flags['delta']
        if flags['contrast_first'] and flags['contrast']:
            img *= flags['alpha']
        img = mmcv.bgr2hsv(img)
        if flags['saturation']:
            img[..., 1] *= flags['saturation_value']
            if flags['saturation_value'] > 1:
                img[..., 1] = img[..., 1].clip(0, 1)
        if flags['hue']:
            img[..., 0] = (img[..., 0] + flags['hue_value']) % 360
        img = mmcv.hsv2bgr(img)
        if not flags['contrast_first'] and flags['contrast']:
            img *= flags['alpha']
        if flags['swap']:
            img = img[..., flags['permutation']]
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(brightness_delta={self.brightness_delta}, '
                f'contrast_range={(self.contrast_lower, self.contrast_upper)}, '
                f'saturation_range={(self.saturation_lower, self.saturation_upper)}, '
                f'hue_delta={self.hue_delta})')


@TRANSFORMS.register_module()
class YOLOXHSVRandomAug(BaseTransform):
    """YOLOX's HSV jitter on a uint8 BGR image, in place.

    Each of hue, saturation and value gets, with probability 0.5, an integer
    shift drawn in [-delta, delta] (hue wraps round, the others are clipped).

    Args:
        hue_delta (int): Max hue shift (OpenCV units, 0-179). Defaults to 5.
        saturation_delta (int): Max saturation shift. Defaults to 30.
        value_delta (int): Max value shift. Defaults to 30.
    """

    def __init__(self, hue_delta: int = 5, saturation_delta: int = 30,
                 value_delta: int = 30) -> None:
        self.hue_delta = hue_delta
        self.saturation_delta = saturation_delta
        self.value_delta = value_delta

    @cache_randomness
    def _get_hsv_gains(self) -> np.ndarray:
        gains = np.random.uniform(-1, 1, 3) * [self.hue_delta, self.saturation_delta,
                                               self.value_delta]
        gains *= np.random.randint(0, 2, 3)
        return gains.astype(np.int16)

    def transform(self, results: dict) -> dict:
        img = results['img']
        gains = self._get_hsv_gains()
        hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + gains[0]) % CV2_HUE_RANGE
        hsv[..., 1] = np.clip(hsv[..., 1] + gains[1], 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + gains[2], 0, 255)
        cv2.cvtColor(hsv.astype(img.dtype), cv2.COLOR_HSV2BGR, dst=img)
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(hue_delta={self.hue_delta}, '
                f'saturation_delta={self.saturation_delta}, value_delta={self.value_delta})')
