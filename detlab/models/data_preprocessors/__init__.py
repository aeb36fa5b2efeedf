"""Data preprocessors and batch augmentations; importing registers them."""
from .batch_augments import BatchFixedSizePad, BatchSyncRandomResize
from .data_preprocessor import DetDataPreprocessor

__all__ = ['DetDataPreprocessor', 'BatchSyncRandomResize', 'BatchFixedSizePad']
