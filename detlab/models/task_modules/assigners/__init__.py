"""Assigners: which ground truth, if any, each prior learns from."""
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult
from .iou2d_calculator import BboxOverlaps2D
from .max_iou_assigner import MaxIoUAssigner

__all__ = [
    'AssignResult', 'BboxOverlaps2D', 'MaxIoUAssigner', 'NEGATIVE_GT_IND', 'IGNORED_GT_IND',
    'NO_LABEL'
]

from .atss_assigner import ATSSAssigner  # noqa: E402

__all__ += ['ATSSAssigner']

from .fcos_assign import PointTargets, fcos_assign, pad_gt_instances  # noqa: E402

__all__ += ['fcos_assign', 'pad_gt_instances', 'PointTargets']

from ..match_costs import (BBoxL1Cost, ClassificationCost, CrossEntropyLossCost,  # noqa: E402
                           FocalLossCost, IoUCost)
from .hungarian_assigner import HungarianAssigner  # noqa: E402

# MMDetection exports the match costs from its assigners package too.
__all__ += ['HungarianAssigner', 'BBoxL1Cost', 'ClassificationCost', 'CrossEntropyLossCost',
            'FocalLossCost', 'IoUCost']
