"""YOLOX's training machinery: YOLOXModeSwitchHook (at the right epoch, also after a resume),
SyncNormHook, and the quadratic warm-up schedulers (MMDetection's formula)."""
import logging
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim.scheduler.param_scheduler import INF
from torch.utils.data import DataLoader, Dataset

from detlab.engine.hooks import SyncNormHook, YOLOXModeSwitchHook
from detlab.engine.schedulers import (QuadraticWarmupLR, QuadraticWarmupMomentum,
                                      QuadraticWarmupParamScheduler)
from detlab.registry import PARAM_SCHEDULERS


class MixDataset(Dataset):
    """Records the transform types it is told to skip (as MultiImageMixDataset)."""

    def __init__(self):
        self.skip_type_keys = None

    def update_skip_type_keys(self, skip_type_keys):
        self.skip_type_keys = tuple(skip_type_keys)

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return index


def runner_at(epoch, loader, model, max_epochs=300):
    return SimpleNamespace(epoch=epoch, max_epochs=max_epochs, train_dataloader=loader,
                           model=model, logger=logging.getLogger('test_yolox_hooks'))


def detector():
    return SimpleNamespace(bbox_head=SimpleNamespace(use_l1=False))


def test_mode_switch_at_the_last_epochs_and_only_once():
    loader, model = DataLoader(MixDataset()), detector()
    hook = YOLOXModeSwitchHook(num_last_epochs=15)
    # 300 epochs, num_last_epochs=15: MMDetection's condition e + 1 >= 300 - 15 first holds
    # at epoch index 284 (16 epochs train switched).
    for epoch in (0, 283):
        hook.before_train_epoch(runner_at(epoch, loader, model))
        assert loader.dataset.skip_type_keys is None and not model.bbox_head.use_l1
    hook.before_train_epoch(runner_at(284, loader, model))
    assert loader.dataset.skip_type_keys == ('Mosaic', 'RandomAffine', 'MixUp')
    assert model.bbox_head.use_l1
    loader.dataset.skip_type_keys = 'untouched'
    hook.before_train_epoch(runner_at(285, loader, model))
    assert loader.dataset.skip_type_keys == 'untouched'


def test_mode_switch_after_resume_and_on_a_model_holding_the_detector():
    # A run resumed at epoch 290 builds a new hook: it switches before its first epoch. A
    # model that holds the detector as ``.detector`` gets the switch on that detector's head.
    loader = DataLoader(MixDataset())
    model = SimpleNamespace(detector=detector())
    hook = YOLOXModeSwitchHook(num_last_epochs=15, skip_type_keys=('Mosaic', ))
    hook.before_train_epoch(runner_at(290, loader, model))
    assert loader.dataset.skip_type_keys == ('Mosaic', )
    assert model.detector.bbox_head.use_l1


def test_mode_switch_restarts_persistent_workers():
    loader = DataLoader(MixDataset(), num_workers=1, persistent_workers=True)
    hook = YOLOXModeSwitchHook(num_last_epochs=1)
    hook.before_train_epoch(runner_at(1, loader, detector(), max_epochs=3))
    assert loader._iterator is None and not loader._DataLoader__initialized
    hook.before_train_epoch(runner_at(2, loader, detector(), max_epochs=3))
    assert loader._DataLoader__initialized


def test_mode_switch_needs_a_mixing_dataset():
    loader = DataLoader(list(range(4)))
    with pytest.raises(TypeError, match='MultiImageMixDataset'):
        YOLOXModeSwitchHook(num_last_epochs=1).before_train_epoch(
            runner_at(5, loader, detector(), max_epochs=6))
    with pytest.raises(ValueError, match='num_last_epochs'):
        YOLOXModeSwitchHook(num_last_epochs=-1)


def test_sync_norm_hook_leaves_a_single_process_alone():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    model[1].running_mean.fill_(0.5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    SyncNormHook().before_val_epoch(SimpleNamespace(model=model))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def optimizer(lr=0.01, momentum=0.9):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)


def mmdet_quadratic(base, step, total):
    """MMDetection's warm-up value after ``step`` steps (0-based): base * (step + 1)^2 / T^2,
    the base value once the warm-up is over."""
    return base * min(step + 1, total) ** 2 / total ** 2


@pytest.mark.parametrize('scheduler_type, param', [(QuadraticWarmupLR, 'lr'),
                                                   (QuadraticWarmupMomentum, 'momentum')])
def test_quadratic_warmup_follows_mmdetections_formula(scheduler_type, param):
    optim = optimizer()
    base = optim.param_groups[0][param]
    scheduler = scheduler_type(optim, begin=0, end=5, by_epoch=False)
    values = []
    for _ in range(8):
        values.append(optim.param_groups[0][param])
        optim.step()
        scheduler.step()
    assert values == pytest.approx([mmdet_quadratic(base, t, 5) for t in range(8)], rel=1e-12)


def test_quadratic_warmup_converts_epochs_to_iterations():
    optim = optimizer()
    scheduler = PARAM_SCHEDULERS.build(
        dict(type='QuadraticWarmupLR', by_epoch=True, begin=0, end=2,
             convert_to_iter_based=True),
        default_args=dict(optimizer=optim, epoch_length=3))
    assert (scheduler.begin, scheduler.end, scheduler.by_epoch) == (0, 6, False)
    assert optim.param_groups[0]['lr'] == pytest.approx(0.01 / 36)
    with pytest.raises(ValueError, match='end must be finite'):
        QuadraticWarmupParamScheduler(optimizer(), param_name='lr', end=INF)
    with pytest.raises(ValueError, match='epoch_length'):
        QuadraticWarmupLR.build_iter_from_epoch(optimizer(), end=2, epoch_length=0)
