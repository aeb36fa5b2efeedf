"""MMDetection's ``build_*`` helpers and registry aliases for task modules.

Each helper is ``TASK_UTILS.build`` under the name MMDetection 3.3 still exports (and
calls deprecated), so code written against ``mmdet.models.task_modules`` keeps working.
New code should call ``detlab.registry.TASK_UTILS.build`` directly.
"""
import warnings
from typing import Any, Optional

from detlab.registry import TASK_UTILS

#: One registry holds every task module; these are MMDetection's older names for it.
PRIOR_GENERATORS = TASK_UTILS
ANCHOR_GENERATORS = TASK_UTILS
BBOX_ASSIGNERS = TASK_UTILS
BBOX_SAMPLERS = TASK_UTILS
BBOX_CODERS = TASK_UTILS
IOU_CALCULATORS = TASK_UTILS


def _build(helper: str, cfg: dict, default_args: Optional[dict]) -> Any:
    warnings.warn(f'{helper} is kept for MMDetection compatibility; use '
                  'detlab.registry.TASK_UTILS.build(cfg)', DeprecationWarning, stacklevel=3)
    return TASK_UTILS.build(cfg, default_args=default_args or None)


def build_prior_generator(cfg: dict, default_args: Optional[dict] = None) -> Any:
    """Build a prior generator (``AnchorGenerator``, ``MlvlPointGenerator``) from ``cfg``."""
    return _build('build_prior_generator', cfg, default_args)


def build_anchor_generator(cfg: dict, default_args: Optional[dict] = None) -> Any:
    """Build an anchor generator from ``cfg``; the same as ``build_prior_generator``."""
    return _build('build_anchor_generator', cfg, default_args)


def build_iou_calculator(cfg: dict, default_args: Optional[dict] = None) -> Any:
    """Build an IoU calculator (``BboxOverlaps2D``) from ``cfg``."""
    return _build('build_iou_calculator', cfg, default_args)


def build_assigner(cfg: dict, **default_args) -> Any:
    """Build a box assigner from ``cfg``; keyword arguments fill keys ``cfg`` lacks."""
    return _build('build_assigner', cfg, default_args)


def build_sampler(cfg: dict, **default_args) -> Any:
    """Build a box sampler from ``cfg``; keyword arguments fill keys ``cfg`` lacks."""
    return _build('build_sampler', cfg, default_args)


def build_bbox_coder(cfg: dict, **default_args) -> Any:
    """Build a box coder from ``cfg``; keyword arguments fill keys ``cfg`` lacks."""
    return _build('build_bbox_coder', cfg, default_args)
