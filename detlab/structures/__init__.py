from .det_data_sample import DetDataSample, OptSampleList, SampleList

__all__ = ['DetDataSample', 'SampleList', 'OptSampleList']

from .bbox import (bbox2roi, bbox_cxcywh_to_xyxy, bbox_flip, bbox_overlaps,  # noqa: E402
                   bbox_xyxy_to_cxcywh, get_box_wh, scale_boxes)

__all__ += [
    'bbox_overlaps', 'bbox_xyxy_to_cxcywh', 'bbox_cxcywh_to_xyxy', 'bbox_flip', 'scale_boxes',
    'bbox2roi', 'get_box_wh'
]

from .bbox import bbox2distance, clip_boxes, distance2bbox  # noqa: E402

__all__ += ['clip_boxes', 'distance2bbox', 'bbox2distance']

from .bbox import (BaseBoxes, HorizontalBoxes, autocast_box_type, cat_boxes,  # noqa: E402
                   convert_box_type, empty_box_as, get_box_tensor, get_box_type, register_box,
                   register_box_converter, stack_boxes)
from .mask import (BaseInstanceMasks, BitmapMasks, PolygonMasks, bitmap_to_polygon,  # noqa: E402
                   polygon_to_bitmap)

__all__ += [
    'BaseBoxes', 'HorizontalBoxes', 'register_box', 'register_box_converter', 'get_box_type',
    'convert_box_type', 'autocast_box_type', 'get_box_tensor', 'empty_box_as', 'cat_boxes',
    'stack_boxes', 'BaseInstanceMasks', 'BitmapMasks', 'PolygonMasks', 'bitmap_to_polygon',
    'polygon_to_bitmap'
]
