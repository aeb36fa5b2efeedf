"""Prior generators: anchors (or points) tiled over feature maps."""
from .anchor_generator import AnchorGenerator
from .point_generator import MlvlPointGenerator
from .ssd_anchor_generator import SSDAnchorGenerator
from .yolo_anchor_generator import YOLOAnchorGenerator

__all__ = ['AnchorGenerator', 'MlvlPointGenerator', 'SSDAnchorGenerator', 'YOLOAnchorGenerator']
