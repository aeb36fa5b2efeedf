"""CheckInvalidLossHook stops on a NaN or infinite loss at its interval, as MMDetection's."""
from types import SimpleNamespace

import pytest
import torch

from detlab.engine.hooks import CheckInvalidLossHook
from detlab.registry import HOOKS


def runner_at(iteration):
    return SimpleNamespace(iter=iteration)


def test_checks_every_interval_and_names_the_iteration():
    hook = HOOKS.build(dict(type='CheckInvalidLossHook', interval=2))
    nan = dict(loss=torch.tensor(float('nan')))
    hook.after_train_iter(runner_at(0), 0, outputs=nan)  # iteration 1: not checked
    with pytest.raises(AssertionError, match='iteration 2'):
        hook.after_train_iter(runner_at(1), 1, outputs=nan)
    with pytest.raises(FloatingPointError, match='infinite or NaN'):
        hook.after_train_iter(runner_at(3), 3, outputs=dict(loss=torch.tensor(float('inf'))))
    hook.after_train_iter(runner_at(1), 1, outputs=dict(loss=torch.tensor(3.0)))


def test_interval_must_be_positive():
    with pytest.raises(ValueError, match='interval'):
        CheckInvalidLossHook(interval=0)
