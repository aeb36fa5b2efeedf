"""Importing this package registers detlab's datasets, samplers and transforms."""
from . import samplers, transforms
from .coco import CocoDataset
from .metainfo import COCO_CLASSES, distinct_palette
from .shapes import ShapesDataset, generate_shapes

__all__ = ['samplers', 'transforms', 'CocoDataset', 'ShapesDataset', 'generate_shapes',
           'COCO_CLASSES', 'distinct_palette']
