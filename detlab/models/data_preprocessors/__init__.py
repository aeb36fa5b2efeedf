"""Data preprocessors; importing registers them."""
from .data_preprocessor import DetDataPreprocessor

__all__ = ['DetDataPreprocessor']
