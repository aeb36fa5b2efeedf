"""BaseBoxes: a tensor of boxes that knows its geometry (MMDetection's box API).

A box object wraps ``tensor`` (..., box_dim) and behaves like that tensor for
indexing, device moves and reshaping, while never letting an operation change
the last dimension. Subclasses (``HorizontalBoxes``) say what the numbers mean
by implementing the geometric methods; methods ending in ``_`` work in place.
"""
from abc import ABCMeta, abstractmethod
from typing import List, Optional, Sequence, Tuple, Type, TypeVar, Union

import numpy as np
import torch
from torch import BoolTensor, Tensor

from ..errors import AssertionIndexError, AssertionTypeError, AssertionValueError

T = TypeVar('T', bound='BaseBoxes')
DeviceType = Union[str, torch.device]
IndexType = Union[slice, int, list, Tensor, np.ndarray, tuple]


class BaseBoxes(metaclass=ABCMeta):
    """Base class of 2-D box types.

    Args:
        data (Tensor | np.ndarray | Sequence): (..., box_dim) box values; an
            empty input becomes (0, box_dim).
        dtype (torch.dtype, optional): Cast to this dtype.
        device (str | torch.device, optional): Move to this device.
        clone (bool): Copy ``data`` (True) or share its memory. Defaults to True.
    """

    #: Length of the last dimension; set by each subclass.
    box_dim: int = 0

    def __init__(self,
                 data: Union[Tensor, np.ndarray, Sequence],
                 dtype: Optional[torch.dtype] = None,
                 device: Optional[DeviceType] = None,
                 clone: bool = True) -> None:
        if not isinstance(data, (np.ndarray, Tensor, Sequence)):
            raise AssertionTypeError(f'{type(self).__name__}: data must be a Tensor, ndarray or '
                                     f'sequence, got {type(data).__name__}.')
        data = torch.as_tensor(data)
        if dtype is not None or device is not None:
            data = data.to(dtype=dtype, device=device)
        if clone:
            data = data.clone()
        if data.numel() == 0:
            data = data.reshape(-1, self.box_dim)
        if data.dim() < 2 or data.size(-1) != self.box_dim:
            raise AssertionValueError(f'{type(self).__name__}: boxes must have shape (..., '
                                      f'{self.box_dim}) with at least 2 dims, got '
                                      f'{tuple(data.shape)}.')
        self.tensor = data

    # ----- type conversion and construction -----
    def convert_to(self, dst_type: Union[str, type]) -> 'BaseBoxes':
        """These boxes as another registered box type."""
        from .box_type import convert_box_type
        return convert_box_type(self, dst_type=dst_type)

    def empty_boxes(self: T, dtype: Optional[torch.dtype] = None,
                    device: Optional[DeviceType] = None) -> T:
        """(0, box_dim) boxes of this type."""
        return type(self)(self.tensor.new_zeros(0, self.box_dim, dtype=dtype, device=device),
                          clone=False)

    def fake_boxes(self: T, sizes: Tuple[int, ...], fill: float = 0,
                   dtype: Optional[torch.dtype] = None,
                   device: Optional[DeviceType] = None) -> T:
        """Boxes of shape ``sizes`` (last entry == box_dim) filled with ``fill``."""
        return type(self)(self.tensor.new_full(sizes, fill, dtype=dtype, device=device),
                          clone=False)

    # ----- indexing that protects the last dimension -----
    def _check_index(self, index: IndexType) -> IndexType:
        if isinstance(index, np.ndarray):
            index = torch.as_tensor(index, device=self.device)
        if isinstance(index, Tensor) and index.dtype == torch.bool:
            if index.dim() >= self.tensor.dim():
                raise AssertionIndexError(f'{type(self).__name__}: a bool index may not reach the '
                                          f'box dimension (index dims {index.dim()}, boxes '
                                          f'{tuple(self.tensor.shape)}).')
        elif isinstance(index, tuple):
            if len(index) >= self.tensor.dim() or (Ellipsis in index and index[-1] is not Ellipsis):
                raise AssertionIndexError(f'{type(self).__name__}: index {index} would reach the '
                                          'box dimension; an Ellipsis may only come last.')
        return index

    def __getitem__(self: T, index: IndexType) -> T:
        boxes = self.tensor[self._check_index(index)]
        if boxes.dim() == 1:
            boxes = boxes.reshape(1, -1)
        return type(self)(boxes, clone=False)

    def __setitem__(self, index: IndexType, values: 'BaseBoxes') -> None:
        if type(values) is not type(self):
            raise AssertionTypeError(f'{type(self).__name__}: can only assign boxes of the same '
                                     f'type, got {type(values).__name__}.')
        self.tensor[self._check_index(index)] = values.tensor

    def __len__(self) -> int:
        return self.tensor.size(0)

    def __deepcopy__(self, memo: dict) -> 'BaseBoxes':
        other = type(self).__new__(type(self))
        memo[id(self)] = other
        other.tensor = self.tensor.clone()
        return other

    def __repr__(self) -> str:
        return f'{type(self).__name__}(\n{self.tensor})'

    # ----- tensor-like behaviour -----
    def new_tensor(self, *args, **kwargs) -> Tensor:
        return self.tensor.new_tensor(*args, **kwargs)

    def new_full(self, *args, **kwargs) -> Tensor:
        return self.tensor.new_full(*args, **kwargs)

    def new_empty(self, *args, **kwargs) -> Tensor:
        return self.tensor.new_empty(*args, **kwargs)

    def new_ones(self, *args, **kwargs) -> Tensor:
        return self.tensor.new_ones(*args, **kwargs)

    def new_zeros(self, *args, **kwargs) -> Tensor:
        return self.tensor.new_zeros(*args, **kwargs)

    def size(self, dim: Optional[int] = None) -> Union[int, torch.Size]:
        return self.tensor.size() if dim is None else self.tensor.size(dim)

    def dim(self) -> int:
        return self.tensor.dim()

    @property
    def device(self) -> torch.device:
        return self.tensor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.tensor.dtype

    @property
    def shape(self) -> torch.Size:
        return self.tensor.shape

    def numel(self) -> int:
        return self.tensor.numel()

    def numpy(self) -> np.ndarray:
        return self.tensor.numpy()

    def _wrap(self: T, tensor: Tensor) -> T:
        return type(self)(tensor, clone=False)

    def to(self: T, *args, **kwargs) -> T:
        return self._wrap(self.tensor.to(*args, **kwargs))

    def cpu(self: T) -> T:
        return self._wrap(self.tensor.cpu())

    def cuda(self: T, *args, **kwargs) -> T:
        return self._wrap(self.tensor.cuda(*args, **kwargs))

    def clone(self: T) -> T:
        return type(self)(self.tensor)

    def detach(self: T) -> T:
        return self._wrap(self.tensor.detach())

    def _check_last_dim(self, shape: Sequence[int], name: str) -> None:
        if shape and shape[-1] not in (-1, self.box_dim):
            raise AssertionValueError(f'{type(self).__name__}.{name}: the last dimension must stay '
                                      f'{self.box_dim}, got shape {tuple(shape)}.')

    def view(self: T, *shape: int) -> T:
        self._check_last_dim(shape, 'view')
        return self._wrap(self.tensor.view(shape))

    def reshape(self: T, *shape: int) -> T:
        self._check_last_dim(shape, 'reshape')
        return self._wrap(self.tensor.reshape(shape))

    def expand(self: T, *sizes: int) -> T:
        return self._wrap(self.tensor.expand(sizes))

    def repeat(self: T, *sizes: int) -> T:
        if sizes and sizes[-1] != 1:
            raise AssertionValueError(f'{type(self).__name__}.repeat: the last size must be 1.')
        return self._wrap(self.tensor.repeat(sizes))

    def _box_dim_untouched(self, dims: Sequence[int], name: str) -> None:
        last = self.tensor.dim() - 1
        if any(d in (-1, last) for d in dims):
            raise AssertionValueError(f'{type(self).__name__}.{name} may not move the box '
                                      'dimension.')

    def transpose(self: T, dim0: int, dim1: int) -> T:
        self._box_dim_untouched((dim0, dim1), 'transpose')
        return self._wrap(self.tensor.transpose(dim0, dim1))

    def permute(self: T, *dims: int) -> T:
        if dims[-1] not in (-1, self.tensor.dim() - 1):
            raise AssertionValueError(f'{type(self).__name__}.permute must keep the box dimension '
                                      'last.')
        return self._wrap(self.tensor.permute(dims))

    def split(self: T, split_size_or_sections: Union[int, Sequence[int]],
              dim: int = 0) -> List[T]:
        self._box_dim_untouched((dim,), 'split')
        return [self._wrap(t) for t in self.tensor.split(split_size_or_sections, dim=dim)]

    def chunk(self: T, chunks: int, dim: int = 0) -> List[T]:
        self._box_dim_untouched((dim,), 'chunk')
        return [self._wrap(t) for t in self.tensor.chunk(chunks, dim=dim)]

    def unbind(self: T, dim: int = 0) -> List[T]:
        self._box_dim_untouched((dim,), 'unbind')
        return [self._wrap(t) for t in self.tensor.unbind(dim=dim)]

    def flatten(self: T, start_dim: int = 0, end_dim: int = -2) -> T:
        self._box_dim_untouched((end_dim,), 'flatten')
        return self._wrap(self.tensor.flatten(start_dim, end_dim))

    def squeeze(self: T, dim: Optional[int] = None) -> T:
        boxes = self.tensor.squeeze() if dim is None else self.tensor.squeeze(dim)
        return type(self)(boxes, clone=False)

    def unsqueeze(self: T, dim: int) -> T:
        if dim in (-1, self.tensor.dim()):
            raise AssertionValueError(f'{type(self).__name__}.unsqueeze may not add a dim after '
                                      'the boxes.')
        return self._wrap(self.tensor.unsqueeze(dim))

    @classmethod
    def cat(cls: Type[T], box_list: Sequence[T], dim: int = 0) -> T:
        """Concatenate boxes of this type along ``dim`` (not the box dimension)."""
        if not all(isinstance(boxes, cls) for boxes in box_list):
            raise AssertionTypeError(f'{cls.__name__}.cat: every item must be a {cls.__name__}.')
        if len(box_list) == 0:
            raise AssertionValueError(f'{cls.__name__}.cat: box_list is empty.')
        if dim in (-1, box_list[0].dim() - 1):
            raise AssertionValueError(f'{cls.__name__}.cat may not concatenate along the box '
                                      'dimension.')
        return cls(torch.cat([boxes.tensor for boxes in box_list], dim=dim), clone=False)

    @classmethod
    def stack(cls: Type[T], box_list: Sequence[T], dim: int = 0) -> T:
        """Stack boxes of this type along a new ``dim`` before the box dimension."""
        if not all(isinstance(boxes, cls) for boxes in box_list):
            raise AssertionTypeError(f'{cls.__name__}.stack: every item must be a {cls.__name__}.')
        if len(box_list) == 0:
            raise AssertionValueError(f'{cls.__name__}.stack: box_list is empty.')
        if dim in (-1, box_list[0].dim()):
            raise AssertionValueError(f'{cls.__name__}.stack may not stack after the box '
                                      'dimension.')
        return cls(torch.stack([boxes.tensor for boxes in box_list], dim=dim), clone=False)

    # ----- geometry every box type defines -----
    @property
    @abstractmethod
    def centers(self) -> Tensor:
        """(..., 2) box centres."""

    @property
    @abstractmethod
    def areas(self) -> Tensor:
        """(...,) box areas."""

    @property
    @abstractmethod
    def widths(self) -> Tensor:
        """(...,) box widths."""

    @property
    @abstractmethod
    def heights(self) -> Tensor:
        """(...,) box heights."""

    @abstractmethod
    def flip_(self, img_shape: Tuple[int, int], direction: str = 'horizontal') -> None:
        """Flip in place inside an image of (h, w) ``img_shape``."""

    @abstractmethod
    def translate_(self, distances: Tuple[float, float]) -> None:
        """Shift in place by (dx, dy)."""

    @abstractmethod
    def clip_(self, img_shape: Tuple[int, int]) -> None:
        """Clip in place to an image of (h, w) ``img_shape``."""

    @abstractmethod
    def rotate_(self, center: Tuple[float, float], angle: float) -> None:
        """Rotate in place about ``center`` by ``angle`` degrees, positive clockwise."""

    @abstractmethod
    def project_(self, homography_matrix: Union[Tensor, np.ndarray]) -> None:
        """Map in place through a (3, 3) homography."""

    @abstractmethod
    def rescale_(self, scale_factor: Tuple[float, float]) -> None:
        """Scale coordinates (and so centres) in place by (w_scale, h_scale)."""

    @abstractmethod
    def resize_(self, scale_factor: Tuple[float, float]) -> None:
        """Scale widths and heights about fixed centres, in place."""

    @abstractmethod
    def is_inside(self, img_shape: Tuple[int, int], all_inside: bool = False,
                  allowed_border: int = 0) -> BoolTensor:
        """(...,) which boxes lie (partly, or with ``all_inside`` wholly) in the image."""

    @abstractmethod
    def find_inside_points(self, points: Tensor, is_aligned: bool = False) -> BoolTensor:
        """(m, n) (or (n,) aligned) which of the (m, 2) points lie in which box."""

    @staticmethod
    @abstractmethod
    def overlaps(boxes1: 'BaseBoxes', boxes2: 'BaseBoxes', mode: str = 'iou',
                 is_aligned: bool = False, eps: float = 1e-6) -> Tensor:
        """(m, n) overlaps (or (m,) aligned) of two box sets."""

    @staticmethod
    @abstractmethod
    def from_instance_masks(masks) -> 'BaseBoxes':
        """Boxes enclosing each of the instance masks."""
