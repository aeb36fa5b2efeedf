"""RoI feature extractors: pool a fixed-size feature for each box."""
from .roi_align import RoIAlign
from .single_level_roi_extractor import SingleRoIExtractor

__all__ = ['RoIAlign', 'SingleRoIExtractor']
