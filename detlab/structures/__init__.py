"""Data structures: DetDataSample, boxes and instance masks."""
from .det_data_sample import DetDataSample, OptSampleList, SampleList
from .bbox import (BaseBoxes, HorizontalBoxes, autocast_box_type, bbox2distance, bbox2roi,
                   bbox_cxcywh_to_xyxy, bbox_flip, bbox_overlaps, bbox_xyxy_to_cxcywh, cat_boxes,
                   clip_boxes, convert_box_type, distance2bbox, empty_box_as, get_box_tensor,
                   get_box_type, get_box_wh, register_box, register_box_converter, scale_boxes,
                   stack_boxes)
from .mask import (BaseInstanceMasks, BitmapMasks, PolygonMasks, bitmap_to_polygon,
                   polygon_to_bitmap)

__all__ = [
    'DetDataSample', 'SampleList', 'OptSampleList', 'bbox_overlaps', 'bbox_xyxy_to_cxcywh',
    'bbox_cxcywh_to_xyxy', 'bbox_flip', 'scale_boxes', 'bbox2roi', 'get_box_wh', 'clip_boxes',
    'distance2bbox', 'bbox2distance', 'BaseBoxes', 'HorizontalBoxes', 'register_box',
    'register_box_converter', 'get_box_type', 'convert_box_type', 'autocast_box_type',
    'get_box_tensor', 'empty_box_as', 'cat_boxes', 'stack_boxes', 'BaseInstanceMasks',
    'BitmapMasks', 'PolygonMasks', 'bitmap_to_polygon', 'polygon_to_bitmap'
]
