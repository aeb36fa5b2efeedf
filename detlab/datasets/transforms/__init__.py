"""detlab's data transforms; importing registers them.

``import mmcv.transforms`` registers mmcv's generic transforms (``RandomResize``,
``RandomChoiceResize``, ...) in mmengine's root TRANSFORMS, which detlab's
TRANSFORMS inherits; detlab's own ``Resize``, ``RandomFlip`` and ``Pad`` take
precedence inside the detlab scope.
"""
import mmcv.transforms  # noqa: F401  (registers mmcv's generic transforms in mmengine's root)

from .affine import RandomAffine
from .cached_mix import CachedMixUp, CachedMosaic
from .crop import Expand, MinIoURandomCrop, RandomCrop
from .erasing import CutOut, RandomErasing
from .formatting import PackDetInputs
from .image_size import DEFAULT_MAX_PIXELS, ImageTooLargeError
from .loading import (FilterAnnotations, LoadAnnotations, LoadImageFromFile,
                      LoadImageFromNDArray)
from .mix import MixUp, Mosaic
from .photometric import PhotoMetricDistortion, YOLOXHSVRandomAug
from .transforms import Pad, RandomFlip, Resize, SegRescale

__all__ = [
    'LoadImageFromFile', 'LoadAnnotations', 'Resize', 'RandomFlip', 'PackDetInputs',
    'FilterAnnotations', 'Pad', 'RandomCrop', 'MinIoURandomCrop', 'Expand',
    'PhotoMetricDistortion', 'YOLOXHSVRandomAug', 'RandomAffine', 'Mosaic', 'MixUp',
    'CachedMosaic', 'CachedMixUp', 'CutOut', 'RandomErasing', 'LoadImageFromNDArray',
    'DEFAULT_MAX_PIXELS', 'ImageTooLargeError', 'SegRescale'
]
