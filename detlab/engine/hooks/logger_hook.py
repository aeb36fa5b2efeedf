"""DetLoggerHook: mmengine's LoggerHook, with validation metrics of
iteration-based runs logged at their iteration."""
from typing import Dict, Optional

from mmengine.hooks import LoggerHook
from mmengine.runner import IterBasedTrainLoop

from detlab.registry import HOOKS


@HOOKS.register_module()
class DetLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook`` (same arguments), logging the validation
    metrics of a run trained by iterations at ``runner.iter``.

    mmengine writes validation metrics to TensorBoard and ``scalars.json`` at
    ``step=runner.epoch`` unless ``log_metric_by_epoch=False``; an
    ``IterBasedTrainLoop``'s epoch stays 0, so every validation of such a run
    would land on step 0, over the previous one. Epoch-based runs and
    ``log_metric_by_epoch=False`` behave as in mmengine.
    """

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        by_iteration = isinstance(runner._train_loop, IterBasedTrainLoop)
        if not (self.log_metric_by_epoch and by_iteration):
            return super().after_val_epoch(runner, metrics)
        self.log_metric_by_epoch = False
        try:
            return super().after_val_epoch(runner, metrics)
        finally:
            self.log_metric_by_epoch = True
