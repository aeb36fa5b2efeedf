"""Runner parts beyond mmengine: DetRunner, hooks, optimizer wrappers,
checkpoint reading and writing, multi-process set-up."""
from . import hooks, optimizers, runner
from .checkpoint import register_checkpoint_schemes
from .hooks import (BadSampleHook, BufferSyncHook, DetCheckpointHook, DetLoggerHook,
                    DetVisualizationHook, NonFiniteLossHook, NumClassCheckHook,
                    PipelineSwitchHook)
from .runner import DetRunner

__all__ = ['hooks', 'optimizers', 'runner', 'register_checkpoint_schemes', 'BadSampleHook',
           'BufferSyncHook', 'DetCheckpointHook', 'DetLoggerHook', 'DetRunner',
           'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook', 'PipelineSwitchHook']
