"""Task modules: prior generators, assigners, match costs, samplers and box coders used by
heads."""
from . import assigners, coders, match_costs, prior_generators, samplers
from .assigners import (ATSSAssigner, AssignResult, BboxOverlaps2D, GridAssigner,
                        HungarianAssigner, MaxIoUAssigner)
from .builder import (ANCHOR_GENERATORS, BBOX_ASSIGNERS, BBOX_CODERS, BBOX_SAMPLERS,
                      IOU_CALCULATORS, PRIOR_GENERATORS, build_anchor_generator, build_assigner,
                      build_bbox_coder, build_iou_calculator, build_prior_generator,
                      build_sampler)
from .coders import DeltaXYWHBBoxCoder, DistancePointBBoxCoder, YOLOBBoxCoder
from .match_costs import (BaseMatchCost, BBoxL1Cost, ClassificationCost, CrossEntropyLossCost,
                          FocalLossCost, IoUCost)
from .prior_generators import (AnchorGenerator, MlvlPointGenerator, SSDAnchorGenerator,
                               YOLOAnchorGenerator)
from .samplers import PseudoSampler, RandomSampler, SamplingResult

__all__ = [
    'assigners', 'coders', 'match_costs', 'prior_generators', 'samplers', 'AnchorGenerator',
    'AssignResult',
    'BboxOverlaps2D', 'MaxIoUAssigner', 'DeltaXYWHBBoxCoder', 'PseudoSampler', 'SamplingResult',
    'RandomSampler', 'ATSSAssigner', 'DistancePointBBoxCoder', 'MlvlPointGenerator',
    'ANCHOR_GENERATORS', 'PRIOR_GENERATORS', 'BBOX_ASSIGNERS', 'BBOX_SAMPLERS', 'BBOX_CODERS',
    'IOU_CALCULATORS', 'build_anchor_generator', 'build_prior_generator', 'build_assigner',
    'build_sampler', 'build_iou_calculator', 'build_bbox_coder', 'HungarianAssigner',
    'BaseMatchCost', 'BBoxL1Cost', 'ClassificationCost', 'CrossEntropyLossCost', 'FocalLossCost',
    'IoUCost', 'SSDAnchorGenerator', 'YOLOAnchorGenerator', 'YOLOBBoxCoder', 'GridAssigner'
]
