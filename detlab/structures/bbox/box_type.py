"""The box type registry: names such as ``'hbox'`` <-> box classes, and converters.

MMDetection's transforms take ``box_type`` names from configs (``LoadAnnotations(
box_type='hbox')``) and convert boxes between registered types; this module
keeps the two tables that make that work and the decorator that lets a
transform accept plain arrays as well as box objects.
"""
from functools import wraps
from typing import Callable, Dict, Optional, Tuple, Type, Union

import numpy as np
import torch
from torch import Tensor

from ..errors import AssertionKeyError, AssertionTypeError, AssertionValueError
from .base_boxes import BaseBoxes

BoxType = Union[np.ndarray, Tensor, BaseBoxes]

#: Registered box classes by lower-case name, and the reverse table.
box_types: Dict[str, Type[BaseBoxes]] = {}
_box_type_to_name: Dict[Type[BaseBoxes], str] = {}
#: Converters by ``'<src>2<dst>'`` name; each maps a (..., src_dim) tensor to (..., dst_dim).
box_converters: Dict[str, Callable[[Tensor], Tensor]] = {}


def _register_box(name: str, box_type: type, force: bool = False) -> None:
    if not (isinstance(box_type, type) and issubclass(box_type, BaseBoxes)):
        raise AssertionTypeError(f'register_box: {box_type!r} must be a subclass of BaseBoxes.')
    name = name.lower()
    if not force and (name in box_types or box_type in _box_type_to_name):
        raise AssertionKeyError(f"register_box: box type name '{name}' or class "
                                f'{box_type.__name__} is already registered; pass force=True to '
                                'replace it.')
    # A forced registration replaces both entries it collides with, so each name maps to
    # one class and each class to one name.
    if name in box_types:
        _box_type_to_name.pop(box_types.pop(name))
    if box_type in _box_type_to_name:
        box_types.pop(_box_type_to_name.pop(box_type))
    box_types[name] = box_type
    _box_type_to_name[box_type] = name


def register_box(name: str, box_type: Optional[type] = None, force: bool = False):
    """Register a box class under ``name``; usable as a decorator.

    Args:
        name (str): Box type name, e.g. ``'hbox'`` (stored lower-case).
        box_type (type, optional): The class; None returns a decorator.
        force (bool): Replace an existing registration. Defaults to False.
    """
    if box_type is not None:
        _register_box(name, box_type, force)
        return box_type

    def _register(cls: type) -> type:
        _register_box(name, cls, force)
        return cls

    return _register


def register_box_converter(src_type: Union[str, type], dst_type: Union[str, type],
                           converter: Optional[Callable] = None, force: bool = False):
    """Register a function converting box tensors from ``src_type`` to ``dst_type``.

    Usable as a decorator. Both types must be registered first.
    """

    def _register(func: Callable) -> Callable:
        if not callable(func):
            raise AssertionTypeError('register_box_converter: the converter must be callable, '
                                     f'got {func!r}.')
        src_name, _ = get_box_type(src_type)
        dst_name, _ = get_box_type(dst_type)
        key = f'{src_name}2{dst_name}'
        if not force and key in box_converters:
            raise AssertionKeyError(f"register_box_converter: '{key}' is already registered; pass "
                                    'force=True to replace it.')
        box_converters[key] = func
        return func

    if converter is None:
        return _register
    return _register(converter)


def get_box_type(box_type: Union[str, type]) -> Tuple[str, type]:
    """Return ``(name, class)`` of a registered box type given either of them."""
    if isinstance(box_type, str):
        name = box_type.lower()
        if name not in box_types:
            raise AssertionKeyError(f"get_box_type: box type '{box_type}' is not registered; known "
                                    f'types: {sorted(box_types)}.')
        return name, box_types[name]
    if isinstance(box_type, type) and issubclass(box_type, BaseBoxes):
        if box_type not in _box_type_to_name:
            raise AssertionKeyError(f'get_box_type: box class {box_type.__name__} is not '
                                    'registered; register it with register_box.')
        return _box_type_to_name[box_type], box_type
    raise AssertionKeyError(f'get_box_type: box_type must be a name or a BaseBoxes subclass, got '
                            f'{box_type!r}.')


def convert_box_type(boxes: BoxType, *, src_type: Union[str, type, None] = None,
                     dst_type: Union[str, type, None] = None) -> BoxType:
    """Convert boxes to ``dst_type``, keeping the container kind (boxes, tensor, array).

    Args:
        boxes (np.ndarray | Tensor | BaseBoxes): (..., box_dim) boxes.
        src_type (str | type, optional): Type of raw ``boxes``; taken from
            ``boxes`` when it is a BaseBoxes.
        dst_type (str | type): Destination type.
    """
    if dst_type is None:
        raise AssertionValueError('convert_box_type: dst_type is required.')
    dst_name, dst_cls = get_box_type(dst_type)
    if isinstance(boxes, BaseBoxes):
        src_name, _ = get_box_type(type(boxes))
    elif isinstance(boxes, (Tensor, np.ndarray)):
        if src_type is None:
            raise AssertionValueError('convert_box_type: src_type is required for raw '
                                      'tensors/arrays.')
        src_name, _ = get_box_type(src_type)
    else:
        raise AssertionTypeError('convert_box_type: boxes must be BaseBoxes, Tensor or ndarray, '
                                 f'got {type(boxes).__name__}.')
    if src_name == dst_name:
        return boxes
    key = f'{src_name}2{dst_name}'
    if key not in box_converters:
        raise AssertionKeyError(f"convert_box_type: no converter '{key}' is registered; known: "
                                f'{sorted(box_converters)}.')
    converter = box_converters[key]
    if isinstance(boxes, BaseBoxes):
        return dst_cls(converter(boxes.tensor))
    if isinstance(boxes, np.ndarray):
        return converter(torch.from_numpy(boxes)).numpy()
    return converter(boxes)


def autocast_box_type(dst_box_type: str = 'hbox') -> Callable:
    """Decorate ``transform(self, results)`` so it also accepts array ``gt_bboxes``.

    A (N, 4) numpy ``results['gt_bboxes']`` (and those in ``mix_results``) is
    wrapped as ``dst_box_type`` for the call and turned back into an array
    afterwards, so code written against box objects serves both kinds.
    """
    _, box_cls = get_box_type(dst_box_type)

    def decorator(func: Callable) -> Callable:

        @wraps(func)
        def wrapper(self, results: dict, *args, **kwargs):
            boxes = results.get('gt_bboxes')
            if boxes is None or isinstance(boxes, BaseBoxes):
                return func(self, results, *args, **kwargs)
            if not isinstance(boxes, np.ndarray):
                raise AssertionTypeError("autocast_box_type: results['gt_bboxes'] must be "
                                         f'BaseBoxes or np.ndarray, got {type(boxes).__name__}.')
            results['gt_bboxes'] = box_cls(boxes, clone=False)
            for mixed in results.get('mix_results', []):
                if isinstance(mixed.get('gt_bboxes'), np.ndarray):
                    mixed['gt_bboxes'] = box_cls(mixed['gt_bboxes'], clone=False)
            out = func(self, results, *args, **kwargs)
            for holder in (out, results):
                if isinstance(holder, dict) and isinstance(holder.get('gt_bboxes'), BaseBoxes):
                    holder['gt_bboxes'] = holder['gt_bboxes'].numpy()
            return out

        return wrapper

    return decorator
