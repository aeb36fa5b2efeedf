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
