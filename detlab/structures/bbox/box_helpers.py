"""Helpers that accept both box objects (BaseBoxes) and plain (..., 4) tensors."""
from typing import List, Union

import torch
from torch import Tensor

from .base_boxes import BaseBoxes

BoxesOrTensor = Union[Tensor, BaseBoxes]


def get_box_tensor(boxes: BoxesOrTensor) -> Tensor:
    """The plain tensor of ``boxes`` (``boxes.tensor`` for a box object)."""
    return boxes.tensor if isinstance(boxes, BaseBoxes) else boxes


def empty_box_as(boxes: BoxesOrTensor) -> BoxesOrTensor:
    """(0, box_dim) boxes of the same kind, dtype and device as ``boxes``."""
    if isinstance(boxes, BaseBoxes):
        return boxes.empty_boxes()
    return boxes.new_zeros(0, boxes.size(-1))


def cat_boxes(data_list: List[BoxesOrTensor], dim: int = 0) -> BoxesOrTensor:
    """Concatenate boxes, all box objects of one type or all tensors."""
    if data_list and isinstance(data_list[0], BaseBoxes):
        return type(data_list[0]).cat(data_list, dim=dim)
    return torch.cat(data_list, dim=dim)


def stack_boxes(data_list: List[BoxesOrTensor], dim: int = 0) -> BoxesOrTensor:
    """Stack boxes, all box objects of one type or all tensors."""
    if data_list and isinstance(data_list[0], BaseBoxes):
        return type(data_list[0]).stack(data_list, dim=dim)
    return torch.stack(data_list, dim=dim)
