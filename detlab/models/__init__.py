"""Importing this package registers every model part in detlab's registries."""
from . import (backbones, data_preprocessors, dense_heads, detectors, layers, losses, necks,
               task_modules)

__all__ = ['backbones', 'data_preprocessors', 'dense_heads', 'detectors', 'layers', 'losses',
           'necks', 'task_modules']
