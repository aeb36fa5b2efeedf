"""Assigners: which ground truth, if any, each prior learns from."""
# MMDetection exports the match costs from its assigners package too.
from ..match_costs import (BBoxL1Cost, ClassificationCost, CrossEntropyLossCost, FocalLossCost,
                           IoUCost)
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult
from .atss_assigner import ATSSAssigner
from .dynamic_soft_label_assigner import DynamicSoftLabelAssigner, center_of_mass
from .fcos_assign import PointTargets, fcos_assign
from .grid_assigner import GridAssigner
from .hungarian_assigner import HungarianAssigner
from .iou2d_calculator import BboxOverlaps2D
from .max_iou_assigner import MaxIoUAssigner
from .sim_ota_assigner import SimOTAAssigner

__all__ = [
    'AssignResult', 'BboxOverlaps2D', 'MaxIoUAssigner', 'NEGATIVE_GT_IND', 'IGNORED_GT_IND',
    'NO_LABEL', 'ATSSAssigner', 'fcos_assign', 'PointTargets', 'DynamicSoftLabelAssigner',
    'HungarianAssigner', 'BBoxL1Cost', 'ClassificationCost', 'CrossEntropyLossCost',
    'FocalLossCost', 'IoUCost', 'GridAssigner', 'SimOTAAssigner',
    'center_of_mass'
]
