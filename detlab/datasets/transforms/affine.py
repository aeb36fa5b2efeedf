"""RandomAffine: rotation, scaling, shear and translation in one warp (YOLOX)."""
import math
from typing import Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmcv.transforms.utils import cache_randomness
from numpy import random

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import autocast_box_type

from .instance_ops import select_instances


def rotation_matrix(degrees: float) -> np.ndarray:
    """(3, 3) rotation about the origin."""
    radian = math.radians(degrees)
    return np.array([[np.cos(radian), -np.sin(radian), 0.], [np.sin(radian), np.cos(radian), 0.],
                     [0., 0., 1.]], dtype=np.float32)


def scaling_matrix(ratio: float) -> np.ndarray:
    return np.array([[ratio, 0., 0.], [0., ratio, 0.], [0., 0., 1.]], dtype=np.float32)


def shear_matrix(x_degrees: float, y_degrees: float) -> np.ndarray:
    return np.array([[1, np.tan(math.radians(x_degrees)), 0.],
                     [np.tan(math.radians(y_degrees)), 1, 0.], [0., 0., 1.]], dtype=np.float32)


def translation_matrix(x: float, y: float) -> np.ndarray:
    return np.array([[1, 0., x], [0., 1, y], [0., 0., 1.]], dtype=np.float32)


@TRANSFORMS.register_module()
class RandomAffine(BaseTransform):
    """Warp the image by a random ``translate @ shear @ rotate @ scale`` matrix.

    As MMDetection 3.3: rotation and scaling are about the image origin,
    translation is drawn in ``±max_translate_ratio`` of the output size, and
    the output is the input size plus ``2 * border`` (negative borders crop a
    Mosaic canvas back to its base size). Boxes are mapped through the matrix
    (the box enclosing the four moved corners), clipped with
    ``bbox_clip_border`` and dropped with their labels/flags/masks when
    nothing of them is left in the image. Masks are warped too (MMDetection
    raises NotImplementedError for them).

    Args:
        max_rotate_degree (float): Rotation drawn in ±this. Defaults to 10.
        max_translate_ratio (float): Translation ratio bound, in [0, 1].
        scaling_ratio_range (tuple[float, float]): Scale range, min > 0.
        max_shear_degree (float): Shear drawn in ±this (per axis). Defaults to 2.
        border (tuple[int, int]): (x, y) added to each side of the output.
        border_val (tuple[int, int, int]): Fill colour. Defaults to 114 grey.
        bbox_clip_border (bool): Clip boxes to the output. Defaults to True.
    """

    def __init__(self,
                 max_rotate_degree: float = 10.0,
                 max_translate_ratio: float = 0.1,
                 scaling_ratio_range: Tuple[float, float] = (0.5, 1.5),
                 max_shear_degree: float = 2.0,
                 border: Tuple[int, int] = (0, 0),
                 border_val: Tuple[int, int, int] = (114, 114, 114),
                 bbox_clip_border: bool = True) -> None:
        if not 0 <= max_translate_ratio <= 1:
            raise ValueError(f'RandomAffine: max_translate_ratio must lie in [0, 1], got '
                             f'{max_translate_ratio}.')
        if not 0 < scaling_ratio_range[0] <= scaling_ratio_range[1]:
            raise ValueError(f'RandomAffine: scaling_ratio_range must be 0 < min <= max, got '
                             f'{scaling_ratio_range}.')
        self.max_rotate_degree = max_rotate_degree
        self.max_translate_ratio = max_translate_ratio
        self.scaling_ratio_range = scaling_ratio_range
        self.max_shear_degree = max_shear_degree
        self.border = border
        self.border_val = border_val
        self.bbox_clip_border = bbox_clip_border

    @cache_randomness
    def _get_random_homography_matrix(self, height: int, width: int) -> np.ndarray:
        rotation = rotation_matrix(random.uniform(-self.max_rotate_degree,
                                                  self.max_rotate_degree))
        scaling = scaling_matrix(random.uniform(*self.scaling_ratio_range))
        shear = shear_matrix(random.uniform(-self.max_shear_degree, self.max_shear_degree),
                             random.uniform(-self.max_shear_degree, self.max_shear_degree))
        trans_x = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * width
        trans_y = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * height
        return translation_matrix(trans_x, trans_y) @ shear @ rotation @ scaling

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        img = results['img']
        height = img.shape[0] + self.border[1] * 2
        width = img.shape[1] + self.border[0] * 2
        matrix = self._get_random_homography_matrix(height, width)
        results['img'] = cv2.warpPerspective(img, matrix, dsize=(width, height),
                                             borderValue=self.border_val)
        results['img_shape'] = results['img'].shape[:2]
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].warp_perspective(matrix, (height, width))
        boxes = results.get('gt_bboxes')
        if boxes is not None and len(boxes):
            boxes.project_(matrix)
            if self.bbox_clip_border:
                boxes.clip_((height, width))
            select_instances(results, boxes.is_inside((height, width)).numpy())
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(max_rotate_degree={self.max_rotate_degree}, '
                f'max_translate_ratio={self.max_translate_ratio}, '
                f'scaling_ratio_range={self.scaling_ratio_range}, '
                f'max_shear_degree={self.max_shear_degree}, border={self.border}, '
                f'border_val={self.border_val}, bbox_clip_border={self.bbox_clip_border})')
