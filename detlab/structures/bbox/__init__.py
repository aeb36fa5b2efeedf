"""Box helpers: overlaps, format conversions and geometric transforms."""
from .bbox_overlaps import OVERLAP_MODES, bbox_overlaps
from .transforms import (FLIP_DIRECTIONS, bbox2roi, bbox_cxcywh_to_xyxy, bbox_flip,
                         bbox_xyxy_to_cxcywh, get_box_wh, scale_boxes)

__all__ = [
    'OVERLAP_MODES', 'FLIP_DIRECTIONS', 'bbox_overlaps', 'bbox_xyxy_to_cxcywh',
    'bbox_cxcywh_to_xyxy', 'bbox_flip', 'scale_boxes', 'bbox2roi', 'get_box_wh'
]

from .transforms import bbox2distance, clip_boxes, distance2bbox  # noqa: E402

__all__ += ['clip_boxes', 'distance2bbox', 'bbox2distance']
