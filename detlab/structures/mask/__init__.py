"""Instance masks as bitmaps or polygons (MMDetection's ``mmdet.structures.mask``)."""
from .base import BaseInstanceMasks
from .bitmap_masks import BitmapMasks
from .mask_target import mask_target
from .polygon_masks import PolygonMasks
from .utils import (bitmap_to_polygon, encode_mask_results, mask2bbox, polygon_to_bitmap,
                    split_combined_polys)

__all__ = [
    'BaseInstanceMasks', 'BitmapMasks', 'PolygonMasks', 'bitmap_to_polygon', 'polygon_to_bitmap',
    'encode_mask_results', 'mask2bbox', 'mask_target', 'split_combined_polys'
]
