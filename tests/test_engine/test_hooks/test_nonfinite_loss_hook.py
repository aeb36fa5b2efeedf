"""A NaN loss stops training with the iteration and the terms, or skips the step."""
import logging

import pytest
import torch
from mmengine.model import BaseModel
from detlab.engine.runner import DetRunner

from detlab.engine.hooks import NonFiniteLossHook
from detlab.utils.checkpoint import load_checkpoint_file

NAN_AT = 3  # 1-based iteration whose loss is NaN


class NanAtModel(BaseModel):
    """A linear model whose ``loss_bad`` term is NaN at iteration ``NAN_AT``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        self.calls = 0

    def forward(self, inputs, mode='tensor'):
        outputs = self.linear(torch.stack(inputs))
        if mode != 'loss':
            return outputs
        self.calls += 1
        bad = torch.tensor(float('nan')) if self.calls == NAN_AT else torch.tensor(0.)
        return dict(loss_good=(outputs ** 2).mean(), loss_bad=bad * outputs.sum())


def build_runner(work_dir, hook: dict) -> DetRunner:
    return DetRunner(
        model=NanAtModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2))] * 8, batch_size=2,
                              num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[hook], default_scope='detlab', log_level=logging.WARNING,
        experiment_name=f'nan-{work_dir.name}-{hook["action"]}')


def test_nan_loss_stops_with_iteration_and_terms_and_keeps_the_last_checkpoint(tmp_path):
    runner = build_runner(tmp_path, dict(type='NonFiniteLossHook', action='stop'))
    with pytest.raises(FloatingPointError) as error:
        runner.train()
    message = str(error.value)
    assert f'iteration {NAN_AT}' in message and 'loss_bad=nan' in message
    assert 'loss_good' not in message  # only the terms that were not finite
    good = load_checkpoint_file(str(tmp_path / 'iter_2.pth'))['state_dict']
    assert not (tmp_path / 'iter_4.pth').exists()
    # The step was not taken: the weights in memory are the last good ones.
    assert torch.equal(runner.model.linear.weight.cpu(), good['linear.weight'])
    assert all(torch.isfinite(value).all() for value in good.values())


def test_skip_drops_the_step_and_training_goes_on(tmp_path):
    runner = build_runner(tmp_path, dict(type='NonFiniteLossHook', action='skip'))
    runner.train()
    assert runner.iter == 6 and torch.isfinite(runner.model.linear.weight).all()
    assert (tmp_path / 'iter_6.pth').is_file()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="'stop', 'skip'"):
        NonFiniteLossHook(action='ignore')
    with pytest.raises(ValueError, match='max_skips'):
        NonFiniteLossHook(max_skips=0)
