"""BaseInstanceMasks: the interface BitmapMasks and PolygonMasks share.

Every geometric method returns a new mask object of the same kind; none works
in place. Shapes are (h, w) unless a name says otherwise.
"""
from abc import ABCMeta, abstractmethod
from typing import Sequence, Type, TypeVar

import numpy as np

from ..errors import AssertionTypeError, AssertionValueError

T = TypeVar('T', bound='BaseInstanceMasks')
FLIP_DIRECTIONS = ('horizontal', 'vertical', 'diagonal')


class BaseInstanceMasks(metaclass=ABCMeta):
    """N instance masks of one (height, width) image."""

    height: int
    width: int
    masks: object  # (N, h, w) array or per-object polygon lists

    def __iter__(self):
        return iter(self.masks)

    def __len__(self) -> int:
        return len(self.masks)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_masks={len(self)}, height={self.height}, '
                f'width={self.width})')

    @abstractmethod
    def rescale(self, scale, interpolation: str = 'nearest'):
        """Scale keeping the aspect ratio, as ``mmcv.imrescale`` scales an image."""

    @abstractmethod
    def resize(self, out_shape, interpolation: str = 'nearest'):
        """Resize to (h, w) ``out_shape``."""

    @abstractmethod
    def flip(self, flip_direction: str = 'horizontal'):
        """Mirror ``'horizontal'``, ``'vertical'`` or ``'diagonal'``."""

    @abstractmethod
    def pad(self, out_shape, pad_val: int = 0):
        """Pad bottom/right to (h, w) ``out_shape``."""

    @abstractmethod
    def crop(self, bbox: np.ndarray):
        """Crop to the (4,) x1, y1, x2, y2 region (clipped to the image)."""

    @abstractmethod
    def crop_and_resize(self, bboxes: np.ndarray, out_shape, inds: np.ndarray,
                        device: str = 'cpu', interpolation: str = 'bilinear',
                        binarize: bool = True):
        """Mask targets: masks ``inds`` cropped to (K, 4) ``bboxes`` and resized to out_shape."""

    @abstractmethod
    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int):
        """Place the masks at (top, left) in a larger empty canvas."""

    @abstractmethod
    def translate(self, out_shape, offset: float, direction: str = 'horizontal',
                  border_value: int = 0, interpolation: str = 'bilinear'):
        """Shift by ``offset`` pixels along ``direction``; result has shape ``out_shape``."""

    @abstractmethod
    def shear(self, out_shape, magnitude: float, direction: str = 'horizontal',
              border_value: int = 0, interpolation: str = 'bilinear'):
        """Shear by ``magnitude`` along ``direction``."""

    @abstractmethod
    def rotate(self, out_shape, angle: float, center=None, scale: float = 1.0,
               border_value: int = 0, interpolation: str = 'bilinear'):
        """Rotate by ``angle`` degrees (positive clockwise, as mmcv.imrotate)."""

    @property
    @abstractmethod
    def areas(self) -> np.ndarray:
        """(N,) mask areas in pixels."""

    @abstractmethod
    def to_ndarray(self) -> np.ndarray:
        """(N, h, w) uint8 bitmaps."""

    @abstractmethod
    def to_tensor(self, dtype, device):
        """(N, h, w) tensor of the bitmaps."""

    @abstractmethod
    def enclosing_boxes(self) -> np.ndarray:
        """(N, 4) float32 x1, y1, x2, y2 box enclosing each mask (zeros if empty)."""

    def get_bboxes(self, dst_type='hbox'):
        """Boxes of the registered box type ``dst_type`` enclosing the masks."""
        from detlab.structures.bbox import get_box_type
        _, box_cls = get_box_type(dst_type)
        return box_cls.from_instance_masks(self)

    @classmethod
    @abstractmethod
    def cat(cls: Type[T], masks: Sequence[T]) -> T:
        """Concatenate mask objects of one image size."""


def check_flip_direction(direction: str) -> None:
    if direction not in FLIP_DIRECTIONS:
        raise AssertionValueError(f'flip direction {direction!r} is not one of {FLIP_DIRECTIONS}.')


def check_cat(cls: type, masks: Sequence) -> None:
    """Masks to concatenate must be a non-empty list of ``cls`` of one size."""
    if not isinstance(masks, Sequence) or len(masks) == 0:
        raise AssertionValueError(f'{cls.__name__}.cat: expected a non-empty list of masks.')
    if not all(isinstance(m, cls) for m in masks):
        raise AssertionTypeError(f'{cls.__name__}.cat: every item must be a {cls.__name__}, got '
                                 f'{[type(m).__name__ for m in masks]}.')
    sizes = {(m.height, m.width) for m in masks}
    if len(sizes) != 1:
        raise AssertionValueError(f'{cls.__name__}.cat: masks have different sizes '
                                  f'{sorted(sizes)}.')
