"""Runner parts beyond mmengine; importing this applies detlab's mmengine fixes."""
from . import federated, hooks, optimizers
from .federated import FedAvgTrainLoop
from .hooks import (BufferSyncHook, DetVisualizationHook, NonFiniteLossHook,
                    NumClassCheckHook)
from .mmengine_fixes import apply_mmengine_fixes

apply_mmengine_fixes()

__all__ = ['federated', 'hooks', 'optimizers', 'FedAvgTrainLoop', 'apply_mmengine_fixes',
           'BufferSyncHook', 'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook']
