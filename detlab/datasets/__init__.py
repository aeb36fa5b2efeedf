"""Importing this package registers detlab's datasets, samplers and transforms."""
from . import samplers, transforms

__all__ = ['samplers', 'transforms']
