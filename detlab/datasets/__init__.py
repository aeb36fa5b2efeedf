"""Importing this package registers detlab's datasets, samplers and transforms.

Exports the names MMDetection's ``mmdet.datasets`` exports for the parts
detlab has.
"""
from . import samplers, transforms
from .bad_samples import BadInputError, BadSampleWarning
from .base_det_dataset import BaseDetDataset
from .coco import ClassOrderWarning, CocoDataset
from .dataset_wrappers import ConcatDataset, MultiImageMixDataset
from .metainfo import COCO_CLASSES, VOC_CLASSES, distinct_palette
from .samplers import AspectRatioBatchSampler
from .shapes import ShapesDataset, generate_shapes
from .utils import get_loading_pipeline
from .voc import VOCDataset
from .xml_style import XMLDataset

__all__ = [
    'samplers', 'transforms', 'BaseDetDataset', 'CocoDataset', 'XMLDataset', 'VOCDataset',
    'ConcatDataset', 'MultiImageMixDataset', 'AspectRatioBatchSampler', 'get_loading_pipeline',
    'ShapesDataset', 'generate_shapes', 'COCO_CLASSES', 'VOC_CLASSES', 'distinct_palette',
    'BadInputError', 'BadSampleWarning', 'ClassOrderWarning'
]
