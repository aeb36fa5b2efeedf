"""CheckInvalidLossHook: MMDetection's periodic check that the training loss is finite."""
from typing import Optional

import torch
from mmengine.hooks import Hook

from detlab.registry import HOOKS


class InvalidLossError(FloatingPointError, AssertionError):
    """The loss was NaN or infinite (an AssertionError, as MMDetection's hook raises)."""


@HOOKS.register_module()
class CheckInvalidLossHook(Hook):
    """Every ``interval`` training iterations, stop with :class:`InvalidLossError`
    when the total loss is not finite (MMDetection's SSD configs add it).

    :class:`NonFiniteLossHook`, which ``tools/train.py`` adds, checks every step
    before the optimizer steps; this hook keeps MMDetection's configs working
    and checks after the step, as MMDetection does.

    Args:
        interval (int): Check every ``interval`` iterations. Defaults to 50.
    """

    def __init__(self, interval: int = 50) -> None:
        if not isinstance(interval, int) or interval < 1:
            raise ValueError(f'CheckInvalidLossHook interval must be a positive int, '
                             f'got {interval!r}')
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if outputs is None or not self.every_n_train_iters(runner, self.interval):
            return
        if not torch.isfinite(outputs['loss']).all():
            raise InvalidLossError(f'CheckInvalidLossHook: the loss became infinite or NaN '
                                   f'at iteration {runner.iter + 1} ({float(outputs["loss"])})')
