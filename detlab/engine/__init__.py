"""Runner parts beyond mmengine: DetRunner, the federated loop, hooks, optimizer
wrappers, checkpoint reading and writing, multi-process set-up."""
from . import federated, hooks, optimizers, runner, schedulers
from .checkpoint import register_checkpoint_schemes
from .federated import FedAvgTrainLoop
from .hooks import (BadSampleHook, BufferSyncHook, CheckInvalidLossHook, DetCheckpointHook,
                    DetLoggerHook, DetVisualizationHook, NonFiniteLossHook, NumClassCheckHook,
                    PipelineSwitchHook, SyncNormHook, YOLOXModeSwitchHook)
from .runner import DetRunner
from .schedulers import (QuadraticWarmupLR, QuadraticWarmupMomentum,
                         QuadraticWarmupParamScheduler)

__all__ = ['federated', 'hooks', 'optimizers', 'runner', 'schedulers',
           'register_checkpoint_schemes', 'FedAvgTrainLoop', 'BadSampleHook', 'BufferSyncHook',
           'CheckInvalidLossHook', 'DetCheckpointHook', 'DetLoggerHook', 'DetRunner',
           'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook', 'PipelineSwitchHook',
           'SyncNormHook', 'YOLOXModeSwitchHook', 'QuadraticWarmupLR', 'QuadraticWarmupMomentum',
           'QuadraticWarmupParamScheduler']
