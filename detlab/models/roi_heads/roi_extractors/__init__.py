"""RoI feature extractors: pool a fixed-size feature for each box."""
from .deform_roi_pool import (DeformRoIPool, DeformRoIPoolPack, ModulatedDeformRoIPoolPack,
                              deform_roi_pool)
from .roi_align import RoIAlign
from .single_level_roi_extractor import SingleRoIExtractor

__all__ = [
    'DeformRoIPool', 'DeformRoIPoolPack', 'ModulatedDeformRoIPoolPack', 'RoIAlign',
    'SingleRoIExtractor', 'deform_roi_pool'
]
