"""Box coders: regression targets between priors and boxes."""
from .delta_xywh_bbox_coder import DeltaXYWHBBoxCoder
from .distance_point_bbox_coder import DistancePointBBoxCoder
from .yolo_bbox_coder import YOLOBBoxCoder

__all__ = ['DeltaXYWHBBoxCoder', 'DistancePointBBoxCoder', 'YOLOBBoxCoder']
