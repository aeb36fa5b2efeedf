"""Importing this package registers detlab's datasets, samplers and transforms.

Exports the names MMDetection's ``mmdet.datasets`` exports for the parts
detlab has.
"""
from . import samplers, transforms
from .bad_samples import BadInputError, BadSampleWarning
from .base_det_dataset import BaseDetDataset
from .coco import ClassOrderWarning, CocoDataset
from .metainfo import COCO_CLASSES, distinct_palette
from .samplers import AspectRatioBatchSampler
from .shapes import ShapesDataset, generate_shapes

__all__ = ['samplers', 'transforms', 'BaseDetDataset', 'CocoDataset', 'ShapesDataset',
           'generate_shapes', 'COCO_CLASSES', 'distinct_palette', 'AspectRatioBatchSampler',
           'BadInputError', 'BadSampleWarning', 'ClassOrderWarning']
