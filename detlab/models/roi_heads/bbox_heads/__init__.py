"""R-CNN box heads: classify and refine each RoI."""
from .bbox_head import BBoxHead, RoITargets
from .convfc_bbox_head import ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead

__all__ = ['BBoxHead', 'ConvFCBBoxHead', 'RoITargets', 'Shared2FCBBoxHead',
           'Shared4Conv1FCBBoxHead']
