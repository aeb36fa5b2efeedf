"""RoI heads: the second stage of two-stage detectors."""
# shared_heads registers ResLayer (the C4 shared head) under MMDetection's name; it is not
# re-exported, so that detlab.models.ResLayer stays the backbone stage.
from . import shared_heads  # noqa: F401
from .bbox_heads import (BBoxHead, ConvFCBBoxHead, RoITargets, Shared2FCBBoxHead,
                         Shared4Conv1FCBBoxHead)
from .cascade_roi_head import CascadeRoIHead
from .htc_roi_head import HybridTaskCascadeRoIHead
from .mask_heads import FCNMaskHead, FusedSemanticHead, HTCMaskHead, paste_masks_in_image
from .roi_extractors import RoIAlign, SingleRoIExtractor
from .standard_roi_head import StandardRoIHead

__all__ = [
    'BBoxHead', 'CascadeRoIHead', 'ConvFCBBoxHead', 'FCNMaskHead', 'FusedSemanticHead',
    'HTCMaskHead', 'HybridTaskCascadeRoIHead', 'RoIAlign', 'RoITargets',
    'Shared2FCBBoxHead', 'Shared4Conv1FCBBoxHead', 'SingleRoIExtractor', 'StandardRoIHead',
    'paste_masks_in_image'
]
