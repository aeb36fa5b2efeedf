from .buffer_sync_hook import BufferSyncHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .num_class_check_hook import NumClassCheckHook
from .visualization_hook import DetVisualizationHook

__all__ = ['BufferSyncHook', 'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook']
