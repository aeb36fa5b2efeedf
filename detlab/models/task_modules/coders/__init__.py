"""Box coders: regression targets between priors and boxes."""
from .delta_xywh_bbox_coder import DeltaXYWHBBoxCoder

__all__ = ['DeltaXYWHBBoxCoder']

from .distance_point_bbox_coder import DistancePointBBoxCoder  # noqa: E402
from .yolo_bbox_coder import YOLOBBoxCoder  # noqa: E402

__all__ += ['DistancePointBBoxCoder', 'YOLOBBoxCoder']
