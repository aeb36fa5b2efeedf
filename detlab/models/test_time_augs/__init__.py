"""Test-time augmentation: merging a detector's predictions on augmented views."""
from .det_tta import DetTTAModel

__all__ = ['DetTTAModel']
