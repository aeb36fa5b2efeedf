"""Importing this package registers every model part in detlab's registries."""
from . import (backbones, data_preprocessors, dense_heads, detectors, layers, losses, necks,
               roi_heads, task_modules, test_time_augs)

__all__ = ['backbones', 'data_preprocessors', 'dense_heads', 'detectors', 'layers', 'losses',
           'necks', 'roi_heads', 'task_modules', 'test_time_augs']

# As ``mmdet.models``: the public names of the subpackages are importable from
# here too (``from detlab.models import ResNet, FocalLoss``).
from .backbones import *  # noqa: F401,F403,E402
from .data_preprocessors import *  # noqa: F401,F403,E402
from .dense_heads import *  # noqa: F401,F403,E402
from .detectors import *  # noqa: F401,F403,E402
from .layers import *  # noqa: F401,F403,E402
from .losses import *  # noqa: F401,F403,E402
from .necks import *  # noqa: F401,F403,E402
from .roi_heads import *  # noqa: F401,F403,E402
from .task_modules import *  # noqa: F401,F403,E402
from .test_time_augs import *  # noqa: F401,F403,E402

__all__ += [
    name for subpackage in (backbones, data_preprocessors, dense_heads, detectors, layers, losses,
                            necks, roi_heads, task_modules, test_time_augs)
    for name in subpackage.__all__ if name not in __all__
]
