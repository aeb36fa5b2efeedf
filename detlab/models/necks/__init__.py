"""Necks: multi-scale backbone features -> the feature pyramid the heads read."""
from .fpn import FPN

__all__ = ['FPN']
