from .bad_sample_hook import BadSampleHook
from .buffer_sync_hook import BufferSyncHook
from .check_invalid_loss_hook import CheckInvalidLossHook
from .checkpoint_hook import DetCheckpointHook
from .logger_hook import DetLoggerHook
from .nonfinite_loss_hook import NonFiniteLossHook
from .num_class_check_hook import NumClassCheckHook
from .pipeline_switch_hook import PipelineSwitchHook
from .sync_norm_hook import SyncNormHook
from .visualization_hook import DetVisualizationHook
from .yolox_mode_switch_hook import YOLOXModeSwitchHook

__all__ = ['BadSampleHook', 'BufferSyncHook', 'CheckInvalidLossHook', 'DetCheckpointHook',
           'DetLoggerHook', 'DetVisualizationHook', 'NonFiniteLossHook', 'NumClassCheckHook',
           'PipelineSwitchHook', 'SyncNormHook', 'YOLOXModeSwitchHook']
