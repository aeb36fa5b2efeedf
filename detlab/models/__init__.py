"""Importing this package registers every model part in detlab's registries."""
from . import (backbones, data_preprocessors, dense_heads, detectors, layers, losses, necks,
               roi_heads, task_modules, test_time_augs)

# As ``mmdet.models``: the public names of the subpackages are importable from
# here too (``from detlab.models import ResNet, FocalLoss``).
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .dense_heads import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .roi_heads import *  # noqa: F401,F403
from .task_modules import *  # noqa: F401,F403
from .test_time_augs import *  # noqa: F401,F403

_SUBPACKAGES = (backbones, data_preprocessors, dense_heads, detectors, layers, losses, necks,
                roi_heads, task_modules, test_time_augs)
__all__ = [package.__name__.rsplit('.', 1)[1] for package in _SUBPACKAGES] + sorted(
    {name for package in _SUBPACKAGES for name in package.__all__})
