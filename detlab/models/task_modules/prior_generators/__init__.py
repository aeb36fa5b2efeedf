"""Prior generators: anchors (or points) tiled over feature maps."""
from .anchor_generator import AnchorGenerator

__all__ = ['AnchorGenerator']
