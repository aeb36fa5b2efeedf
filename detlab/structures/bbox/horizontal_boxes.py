"""HorizontalBoxes: axis-aligned boxes (..., 4) x1, y1, x2, y2, registered as ``'hbox'``."""
from typing import Optional, Tuple, Union

import cv2
import numpy as np
import torch
from torch import BoolTensor, Tensor
from torch.autograd.graph import increment_version

from ..errors import AssertionTypeError, AssertionValueError
from .base_boxes import BaseBoxes, DeviceType
from .bbox_overlaps import bbox_overlaps
from .box_type import register_box
from .transforms import bbox_cxcywh_to_xyxy, bbox_flip, bbox_xyxy_to_cxcywh

#: Layouts ``HorizontalBoxes(in_mode=...)`` accepts; boxes are always stored as xyxy.
BOX_MODES = ('xyxy', 'cxcywh')
#: Dtypes whose element-wise arithmetic numpy and torch round alike.
_HOST_FLOATS = (torch.float32, torch.float64)


def host_array(tensor: Tensor) -> Optional[np.ndarray]:
    """The numpy view of a CPU float tensor outside autograd (and not an
    inference-mode tensor, whose in-place rules torch enforces), else None.

    A pipeline sample's few boxes cost more in torch's per-call dispatch
    (5-10 us an operation) than in numpy's (about 1 us); the element-wise
    products, differences and clamps give the same IEEE results either way.
    """
    if tensor.device.type == 'cpu' and not tensor.requires_grad and \
            tensor.dtype in _HOST_FLOATS and not tensor.is_inference():
        return tensor.numpy()
    return None


@register_box(name='hbox')
class HorizontalBoxes(BaseBoxes):
    """Axis-aligned boxes, MMDetection's default box type.

    ``tensor`` is (..., 4) x1, y1, x2, y2 in pixels.

    Args:
        data (Tensor | np.ndarray | Sequence): (..., 4) boxes.
        dtype (torch.dtype, optional): Cast to this dtype.
        device (str | torch.device, optional): Move to this device.
        clone (bool): Copy ``data``. Defaults to True.
        in_mode (str, optional): ``'xyxy'`` or ``'cxcywh'`` (converted to xyxy).
    """

    box_dim: int = 4

    def __init__(self,
                 data: Union[Tensor, np.ndarray],
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[DeviceType] = None,
                 clone: bool = True,
                 in_mode: Optional[str] = None) -> None:
        super().__init__(data=data, dtype=dtype, device=device, clone=clone)
        if in_mode is not None and in_mode not in BOX_MODES:
            raise AssertionValueError(f'HorizontalBoxes: in_mode={in_mode!r}, expected one of '
                                      f'{BOX_MODES}.')
        if in_mode == 'cxcywh':
            self.tensor = self.cxcywh_to_xyxy(self.tensor)

    @staticmethod
    def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
        """(..., 4) cx, cy, w, h -> x1, y1, x2, y2."""
        return bbox_cxcywh_to_xyxy(boxes)

    @staticmethod
    def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
        """(..., 4) x1, y1, x2, y2 -> cx, cy, w, h."""
        return bbox_xyxy_to_cxcywh(boxes)

    @property
    def cxcywh(self) -> Tensor:
        """(..., 4) centre x, centre y, width, height."""
        return self.xyxy_to_cxcywh(self.tensor)

    @property
    def centers(self) -> Tensor:
        return (self.tensor[..., :2] + self.tensor[..., 2:]) / 2

    @property
    def areas(self) -> Tensor:
        return self.widths * self.heights

    @property
    def widths(self) -> Tensor:
        return self.tensor[..., 2] - self.tensor[..., 0]

    @property
    def heights(self) -> Tensor:
        return self.tensor[..., 3] - self.tensor[..., 1]

    def flip_(self, img_shape: Tuple[int, int], direction: str = 'horizontal') -> None:
        array = host_array(self.tensor)
        if array is None:
            self.tensor[...] = bbox_flip(self.tensor, img_shape, direction)
        else:
            array[...] = bbox_flip(array, img_shape, direction)
            increment_version(self.tensor)  # autograd still sees the write

    def translate_(self, distances: Tuple[float, float]) -> None:
        if len(distances) != 2:
            raise AssertionValueError('HorizontalBoxes.translate_: distances must be (dx, dy), '
                                      f'got {distances!r}.')
        self.tensor = self.tensor + self.tensor.new_tensor(distances).repeat(2)

    def clip_(self, img_shape: Tuple[int, int]) -> None:
        height, width = img_shape[:2]
        array = host_array(self.tensor)
        if array is None:
            self.tensor[..., 0::2] = self.tensor[..., 0::2].clamp(0, width)
            self.tensor[..., 1::2] = self.tensor[..., 1::2].clamp(0, height)
        else:
            # clamp(0, bound) as two ufuncs (np.clip's Python wrapper costs more than both)
            np.maximum(array, 0, out=array)
            np.minimum(array, np.array([width, height, width, height], array.dtype), out=array)
            increment_version(self.tensor)

    def rotate_(self, center: Tuple[float, float], angle: float) -> None:
        # cv2 measures angles counter-clockwise; positive ``angle`` here is clockwise.
        affine = cv2.getRotationMatrix2D(tuple(float(c) for c in center), -angle, 1)
        self._apply_to_corners(self.tensor.new_tensor(np.vstack([affine, [0, 0, 1]])))

    def project_(self, homography_matrix: Union[Tensor, np.ndarray]) -> None:
        self._apply_to_corners(self.tensor.new_tensor(homography_matrix))

    def _apply_to_corners(self, matrix: Tensor) -> None:
        """Map the four corners through a (3, 3) matrix; keep their enclosing box."""
        corners = self.hbox2corner(self.tensor)
        ones = corners.new_ones(*corners.shape[:-1], 1)
        mapped = torch.cat([corners, ones], dim=-1) @ matrix.T
        self.tensor = self.corner2hbox(mapped[..., :2] / mapped[..., 2:3])

    @staticmethod
    def hbox2corner(boxes: Tensor) -> Tensor:
        """(..., 4) boxes -> (..., 4, 2) corners (x1,y1), (x2,y1), (x1,y2), (x2,y2)."""
        x1, y1, x2, y2 = boxes.unbind(-1)
        corners = torch.stack([x1, y1, x2, y1, x1, y2, x2, y2], dim=-1)
        return corners.reshape(*boxes.shape[:-1], 4, 2)

    @staticmethod
    def corner2hbox(corners: Tensor) -> Tensor:
        """(..., k, 2) points -> (..., 4) box enclosing them."""
        if corners.numel() == 0:
            return corners.new_zeros((0, 4))
        return torch.cat([corners.min(dim=-2)[0], corners.max(dim=-2)[0]], dim=-1)

    def rescale_(self, scale_factor: Tuple[float, float]) -> None:
        if len(scale_factor) != 2:
            raise AssertionValueError(f'HorizontalBoxes.rescale_: scale_factor must be (w, h), got '
                                      f'{scale_factor!r}.')
        array = host_array(self.tensor)
        if array is None:
            self.tensor = self.tensor * self.tensor.new_tensor(scale_factor).repeat(2)
        else:
            # The factors rounded to the boxes' dtype first, as new_tensor rounds them.
            factors = np.array(scale_factor, array.dtype)[[0, 1, 0, 1]]
            self.tensor = torch.from_numpy(array * factors)

    def resize_(self, scale_factor: Tuple[float, float]) -> None:
        if len(scale_factor) != 2:
            raise AssertionValueError(f'HorizontalBoxes.resize_: scale_factor must be (w, h), got '
                                      f'{scale_factor!r}.')
        centers = self.centers
        half_wh = (self.tensor[..., 2:] - self.tensor[..., :2]) * self.tensor.new_tensor(
            scale_factor) / 2
        self.tensor = torch.cat([centers - half_wh, centers + half_wh], dim=-1)

    def is_inside(self, img_shape: Tuple[int, int], all_inside: bool = False,
                  allowed_border: int = 0) -> BoolTensor:
        height, width = img_shape[:2]
        x1, y1, x2, y2 = self.tensor.unbind(-1)
        if all_inside:
            return ((x1 >= -allowed_border) & (y1 >= -allowed_border)
                    & (x2 < width + allowed_border) & (y2 < height + allowed_border))
        return ((x1 < width + allowed_border) & (y1 < height + allowed_border)
                & (x2 > -allowed_border) & (y2 > -allowed_border))

    def find_inside_points(self, points: Tensor, is_aligned: bool = False) -> BoolTensor:
        boxes = self.tensor
        if boxes.dim() != 2:
            raise AssertionValueError('HorizontalBoxes.find_inside_points needs (n, 4) boxes, got '
                                      f'{tuple(boxes.shape)}.')
        if is_aligned:
            if boxes.size(0) != points.size(0):
                raise AssertionValueError(f'find_inside_points: {points.size(0)} points for '
                                          f'{boxes.size(0)} aligned boxes.')
        else:
            boxes, points = boxes[None], points[:, None]
        x1, y1, x2, y2 = boxes.unbind(-1)
        px, py = points[..., 0], points[..., 1]
        return (px >= x1) & (px <= x2) & (py >= y1) & (py <= y2)

    def create_masks(self, img_shape: Tuple[int, int]):
        """:class:`BitmapMasks` (n, h, w) filling each box's integer pixel span."""
        from detlab.structures.mask import BitmapMasks
        height, width = img_shape[:2]
        masks = np.zeros((len(self), height, width), dtype=np.uint8)
        for i, (x1, y1, x2, y2) in enumerate(self.tensor.int().tolist()):
            masks[i, y1:y2, x1:x2] = 1
        return BitmapMasks(masks, height, width)

    @staticmethod
    def overlaps(boxes1: BaseBoxes, boxes2: BaseBoxes, mode: str = 'iou',
                 is_aligned: bool = False, eps: float = 1e-6) -> Tensor:
        boxes1, boxes2 = boxes1.convert_to('hbox'), boxes2.convert_to('hbox')
        return bbox_overlaps(boxes1.tensor, boxes2.tensor, mode=mode, is_aligned=is_aligned,
                             eps=eps)

    @staticmethod
    def from_instance_masks(masks) -> 'HorizontalBoxes':
        """(n, 4) boxes enclosing :class:`BitmapMasks` or :class:`PolygonMasks`.

        Bitmap boxes run to the far pixel edge (x_max + 1); an empty mask gives
        a zero box.
        """
        from detlab.structures.mask import BitmapMasks, PolygonMasks
        if not isinstance(masks, (BitmapMasks, PolygonMasks)):
            raise AssertionTypeError('from_instance_masks: expected BitmapMasks or PolygonMasks, '
                                     f'got {type(masks).__name__}.')
        return HorizontalBoxes(masks.enclosing_boxes())
