"""Mask heads of two-stage detectors."""
from .fcn_mask_head import FCNMaskHead
from .fused_semantic_head import FusedSemanticHead
from .htc_mask_head import HTCMaskHead
from .paste_masks import paste_masks_in_image

__all__ = ['FCNMaskHead', 'FusedSemanticHead', 'HTCMaskHead', 'paste_masks_in_image']
