"""detlab's data transforms; importing registers them.

``import mmcv.transforms`` registers mmcv's generic transforms (``RandomResize``,
``RandomChoiceResize``, ``Pad``, ...) in mmengine's root TRANSFORMS, which
detlab's TRANSFORMS inherits.
"""
import mmcv.transforms  # noqa: F401  (registers mmcv's generic transforms in mmengine's root)

from .formatting import PackDetInputs
from .loading import LoadAnnotations, LoadImageFromFile, LoadImageFromNDArray
from .transforms import RandomFlip, Resize

__all__ = ['LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip', 'PackDetInputs',
           'LoadImageFromNDArray']
