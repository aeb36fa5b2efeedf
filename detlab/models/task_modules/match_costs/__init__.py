"""Match costs for one-to-one (Hungarian) assignment."""
from .match_cost import (BaseMatchCost, BBoxL1Cost, ClassificationCost, CrossEntropyLossCost,
                         FocalLossCost, IoUCost)

__all__ = ['BaseMatchCost', 'BBoxL1Cost', 'ClassificationCost', 'CrossEntropyLossCost',
           'FocalLossCost', 'IoUCost']
