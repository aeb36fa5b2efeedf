"""Prior generators: anchors (or points) tiled over feature maps."""
from .anchor_generator import AnchorGenerator

__all__ = ['AnchorGenerator']

from .point_generator import MlvlPointGenerator  # noqa: E402
from .ssd_anchor_generator import SSDAnchorGenerator  # noqa: E402
from .yolo_anchor_generator import YOLOAnchorGenerator  # noqa: E402

__all__ += ['MlvlPointGenerator', 'SSDAnchorGenerator', 'YOLOAnchorGenerator']
