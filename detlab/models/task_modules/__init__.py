"""Task modules: prior generators, assigners, samplers and box coders used by heads."""
from . import assigners, coders, match_costs, prior_generators, samplers
from .assigners import AssignResult, BboxOverlaps2D, MaxIoUAssigner
from .coders import DeltaXYWHBBoxCoder
from .prior_generators import AnchorGenerator
from .samplers import PseudoSampler, RandomSampler, SamplingResult

__all__ = [
    'assigners', 'coders', 'match_costs', 'prior_generators', 'samplers', 'AnchorGenerator',
    'AssignResult',
    'BboxOverlaps2D', 'MaxIoUAssigner', 'DeltaXYWHBBoxCoder', 'PseudoSampler', 'SamplingResult',
    'RandomSampler'
]

from .assigners import ATSSAssigner  # noqa: E402
from .coders import DistancePointBBoxCoder  # noqa: E402
from .prior_generators import MlvlPointGenerator  # noqa: E402

__all__ += ['ATSSAssigner', 'DistancePointBBoxCoder', 'MlvlPointGenerator']

from .assigners import HungarianAssigner  # noqa: E402
from .match_costs import *  # noqa: F401,F403,E402
from .match_costs import __all__ as _match_cost_names  # noqa: E402

__all__ += ['HungarianAssigner', *_match_cost_names]
