"""Metrics and metric math; the names MMDetection's ``mmdet.evaluation`` exports
for the parts detlab has (``CocoMetric``, ``VOCMetric``, ``DumpDetResults``,
``eval_map``, ``bbox_overlaps``, ...) import from here."""
from . import functional, metrics
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from .metrics import *  # noqa: F401,F403
from .metrics import __all__ as _metrics_all

__all__ = ['functional', 'metrics', *_functional_all, *_metrics_all]
