"""Runner parts beyond mmengine; importing this applies detlab's mmengine fixes."""
from . import hooks, optimizers
from .hooks import (BufferSyncHook, DetVisualizationHook, NonFiniteLossHook,
                    NumClassCheckHook, PipelineSwitchHook)
from .mmengine_fixes import apply_mmengine_fixes

apply_mmengine_fixes()

__all__ = ['hooks', 'optimizers', 'apply_mmengine_fixes', 'BufferSyncHook',
           'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook', 'PipelineSwitchHook']
