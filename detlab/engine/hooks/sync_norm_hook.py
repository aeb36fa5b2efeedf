"""SyncNormHook: the same normalisation statistics on every process before validation."""
from mmengine.hooks import Hook
from torch import nn

from detlab.registry import HOOKS
from .buffer_sync_hook import average_float_buffers


@HOOKS.register_module()
class SyncNormHook(Hook):
    """Before each validation epoch, replace every normalisation layer's
    floating-point buffers (BatchNorm running mean and variance) by their mean
    over the processes, as MMDetection's hook for YOLOX; a single process is
    left alone. Parameters need no averaging: DDP keeps them equal."""

    def before_val_epoch(self, runner) -> None:
        norms = [module for module in runner.model.modules()
                 if isinstance(module, nn.modules.batchnorm._NormBase)]
        if norms:
            average_float_buffers(nn.ModuleList(norms))
