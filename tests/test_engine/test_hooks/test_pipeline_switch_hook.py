"""PipelineSwitchHook: the second pipeline from switch_epoch on, also after a resume."""
import logging
from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader, Dataset

from detlab.engine.hooks import PipelineSwitchHook


class StageDataset(Dataset):
    """Items run through ``pipeline``; the first pipeline marks them stage 1."""

    def __init__(self):
        self.pipeline = lambda item: dict(item, stage=1)

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return self.pipeline(dict(index=index))


class Wrapper(Dataset):
    """A dataset wrapper that keeps the wrapped dataset as ``.dataset`` (as RepeatDataset)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return self.dataset[index]


def stage_two(item):
    return dict(item, stage=2)


def runner_at(epoch, loader):
    return SimpleNamespace(epoch=epoch, train_dataloader=loader,
                           logger=logging.getLogger('test_pipeline_switch_hook'))


def stages(loader):
    return sorted(set(int(stage) for batch in loader for stage in batch['stage']))


def test_switches_at_switch_epoch_and_only_once():
    loader = DataLoader(StageDataset(), batch_size=2)
    hook = PipelineSwitchHook(switch_epoch=2, switch_pipeline=[stage_two])
    for epoch in (0, 1):
        hook.before_train_epoch(runner_at(epoch, loader))
        assert stages(loader) == [1]
    hook.before_train_epoch(runner_at(2, loader))
    assert stages(loader) == [2]
    switched = loader.dataset.pipeline
    hook.before_train_epoch(runner_at(3, loader))
    assert loader.dataset.pipeline is switched


def test_a_run_resumed_past_switch_epoch_trains_on_the_second_pipeline():
    loader = DataLoader(Wrapper(StageDataset()), batch_size=2)
    hook = PipelineSwitchHook(switch_epoch=2, switch_pipeline=[stage_two])
    hook.before_train_epoch(runner_at(5, loader))  # a fresh hook, as after --resume
    assert stages(loader) == [2]


@pytest.mark.slow
def test_persistent_workers_restart_with_the_second_pipeline():
    loader = DataLoader(StageDataset(), batch_size=2, num_workers=1, persistent_workers=True)
    hook = PipelineSwitchHook(switch_epoch=1, switch_pipeline=[stage_two])
    hook.before_train_epoch(runner_at(0, loader))
    assert stages(loader) == [1]
    hook.before_train_epoch(runner_at(1, loader))
    assert stages(loader) == [2]
    hook.before_train_epoch(runner_at(2, loader))
    assert stages(loader) == [2]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='switch_epoch'):
        PipelineSwitchHook(switch_epoch=-1, switch_pipeline=[])
    loader = DataLoader([1, 2])
    with pytest.raises(TypeError, match='no pipeline'):
        PipelineSwitchHook(switch_epoch=0, switch_pipeline=[]).before_train_epoch(
            runner_at(0, loader))
