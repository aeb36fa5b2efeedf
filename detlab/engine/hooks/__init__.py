from .num_class_check_hook import NumClassCheckHook
from .visualization_hook import DetVisualizationHook

__all__ = ['DetVisualizationHook', 'NumClassCheckHook']
