"""Mask heads of two-stage detectors."""
from .fcn_mask_head import FCNMaskHead
from .paste_masks import paste_masks_in_image

__all__ = ['FCNMaskHead', 'paste_masks_in_image']
