"""Instance masks as bitmaps or polygons (MMDetection's ``mmdet.structures.mask``)."""
from .base import BaseInstanceMasks
from .bitmap_masks import BitmapMasks
from .polygon_masks import PolygonMasks
from .utils import (bitmap_to_polygon, encode_mask_results, mask2bbox, polygon_to_bitmap,
                    split_combined_polys)

__all__ = [
    'BaseInstanceMasks', 'BitmapMasks', 'PolygonMasks', 'bitmap_to_polygon', 'polygon_to_bitmap',
    'encode_mask_results', 'mask2bbox', 'split_combined_polys'
]
