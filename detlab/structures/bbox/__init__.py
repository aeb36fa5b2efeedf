"""Boxes: overlaps, format conversions, geometric transforms and box types.

Import path as MMDetection's ``mmdet.structures.bbox``.
"""
from .base_boxes import BaseBoxes
from .bbox_overlaps import OVERLAP_MODES, bbox_overlaps
from .box_helpers import cat_boxes, empty_box_as, get_box_tensor, stack_boxes
from .box_type import (autocast_box_type, convert_box_type, get_box_type, register_box,
                       register_box_converter)
from .horizontal_boxes import HorizontalBoxes
from .transforms import (FLIP_DIRECTIONS, bbox2distance, bbox2roi, bbox_cxcywh_to_xyxy, bbox_flip,
                         bbox_project, bbox_xyxy_to_cxcywh, clip_boxes, distance2bbox, get_box_wh,
                         scale_boxes)

__all__ = [
    'OVERLAP_MODES', 'FLIP_DIRECTIONS', 'bbox_overlaps', 'bbox_xyxy_to_cxcywh',
    'bbox_cxcywh_to_xyxy', 'bbox_flip', 'scale_boxes', 'bbox2roi', 'get_box_wh',
    'BaseBoxes', 'HorizontalBoxes', 'register_box', 'register_box_converter', 'get_box_type',
    'convert_box_type', 'autocast_box_type', 'get_box_tensor', 'empty_box_as', 'cat_boxes',
    'stack_boxes', 'clip_boxes', 'distance2bbox', 'bbox2distance', 'bbox_project'
]
