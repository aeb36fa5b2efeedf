"""RoI heads: the second stage of two-stage detectors."""
from .bbox_heads import (BBoxHead, ConvFCBBoxHead, RoITargets, Shared2FCBBoxHead,
                         Shared4Conv1FCBBoxHead)
from .roi_extractors import RoIAlign, SingleRoIExtractor
from .standard_roi_head import StandardRoIHead

__all__ = [
    'BBoxHead', 'ConvFCBBoxHead', 'RoIAlign', 'RoITargets', 'Shared2FCBBoxHead',
    'Shared4Conv1FCBBoxHead', 'SingleRoIExtractor', 'StandardRoIHead'
]
