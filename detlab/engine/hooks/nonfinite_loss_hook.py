"""NonFiniteLossHook: a NaN or infinite loss stops training (or skips the step)."""
import math
from typing import Callable, List, Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper, OptimWrapperDict

from detlab.registry import HOOKS

ACTIONS = ('stop', 'skip')


def all_ranks_finite(loss: torch.Tensor) -> bool:
    """True when ``loss`` is finite on every process (one flag, all-reduced)."""
    finite = torch.isfinite(loss.detach()).all().to(torch.int32).reshape(1)
    if is_distributed():
        torch_dist.all_reduce(finite, op=torch_dist.ReduceOp.MIN)
    return bool(finite.item())


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Guard the optimizer step against a NaN or infinite loss.

    The total loss is checked (on every rank together) before the optimizer
    step. With ``action='stop'`` the step is not taken and training stops at
    once with a ``FloatingPointError`` that names the iteration and the loss
    terms that were not finite; the hook runs before ``CheckpointHook``, so no
    checkpoint is written from the broken state and the last good one stays.
    With ``action='skip'`` the step is skipped (gradients dropped), a warning
    names the iteration and terms, and training goes on; after
    ``max_skips`` skipped steps in a row it stops as with ``'stop'``.
    ``tools/train.py`` adds ``NonFiniteLossHook(action='stop')`` unless the
    config has one.

    Args:
        action (str): ``'stop'`` or ``'skip'``. Defaults to ``'stop'``.
        max_skips (int): Consecutive skipped steps before stopping. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_skips: int = 10) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteLossHook action must be one of {ACTIONS}, '
                             f'got {action!r}.')
        if not isinstance(max_skips, int) or max_skips < 1:
            raise ValueError(f'NonFiniteLossHook max_skips must be a positive int, '
                             f'got {max_skips!r}.')
        self.action = action
        self.max_skips = max_skips
        self.skipped_in_a_row = 0
        self._finite: Optional[bool] = None

    def before_train(self, runner) -> None:
        wrappers = (runner.optim_wrapper.values()
                    if isinstance(runner.optim_wrapper, OptimWrapperDict)
                    else [runner.optim_wrapper])
        for wrapper in wrappers:
            self._guard(wrapper)

    def _guard(self, wrapper: OptimWrapper) -> None:
        """Check the loss in ``update_params``; let ``step`` through only when finite."""
        if getattr(wrapper, '_nonfinite_guard', None) is self:
            return
        update_params: Callable = wrapper.update_params
        step: Callable = wrapper.step

        def guarded_update_params(loss: torch.Tensor, *args, **kwargs) -> None:
            self._finite = all_ranks_finite(loss)
            update_params(loss, *args, **kwargs)

        def guarded_step(*args, **kwargs) -> None:
            if self._finite is False:
                return  # update_params drops the gradients next
            step(*args, **kwargs)

        wrapper.update_params = guarded_update_params
        wrapper.step = guarded_step
        wrapper._nonfinite_guard = self

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        finite, self._finite = self._finite, None
        if finite is not False:
            self.skipped_in_a_row = 0
            return
        terms = nonfinite_terms(outputs or {})
        where = (f'iteration {runner.iter + 1}: the loss is not finite '
                 f'(non-finite terms: {", ".join(terms) or "the total loss"})')
        if self.action == 'skip' and self.skipped_in_a_row + 1 < self.max_skips:
            self.skipped_in_a_row += 1
            runner.logger.warning(f'NonFiniteLossHook skipped the optimizer step at {where}.')
            return
        raise FloatingPointError(
            f'Training stopped at {where}. The optimizer step was not taken and no checkpoint '
            'was written from this state; the last checkpoint in the work dir is intact. '
            'Lower the learning rate, add gradient clipping (optim_wrapper.clip_grad), check '
            "the data, or set custom_hooks=[dict(type='NonFiniteLossHook', action='skip')].")


def nonfinite_terms(log_vars: dict) -> List[str]:
    """Names and values of the logged loss terms that are NaN or infinite."""
    found = []
    for name, value in log_vars.items():
        number = float(value.item() if isinstance(value, torch.Tensor) else value)
        if not math.isfinite(number):
            found.append(f'{name}={number}')
    return found
