"""Shared heads: layers run on every RoI feature before the box and mask heads."""
from .res_layer import ResLayer

__all__ = ['ResLayer']
