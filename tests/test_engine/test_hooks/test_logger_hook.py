"""DetLoggerHook: validation metrics of iteration-based runs at their iteration."""
import json

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.runner import Runner

import detlab.engine  # noqa: F401  (registers DetLoggerHook)
from toy_model import TinyModel


class _CountingMetric(BaseMetric):
    """Reports how many samples it saw, as ``toy/count``."""
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(count=float(sum(results)))


def val_steps(tmp_path, by_epoch: bool, logger: str) -> list:
    """Steps at which a 4-sample toy run logged its validation metric."""
    data = [dict(inputs=torch.ones(2))] * 4
    loader = dict(dataset=data, batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='pseudo_collate'))
    train_cfg = (dict(by_epoch=True, max_epochs=2, val_interval=1) if by_epoch else
                 dict(by_epoch=False, max_iters=4, val_interval=2))
    runner = Runner(
        model=TinyModel(), work_dir=str(tmp_path), train_dataloader=loader,
        val_dataloader=loader, val_evaluator=Evaluator(_CountingMetric()), val_cfg=dict(),
        train_cfg=train_cfg, optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None, logger=dict(type=logger)),
        log_processor=dict(by_epoch=by_epoch), default_scope='detlab',
        experiment_name=f'val-steps-{tmp_path.name}-{logger}')
    runner.train()
    scalars = tmp_path / runner.timestamp / 'vis_data' / 'scalars.json'
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [record['step'] for record in records if 'toy/count' in record]


@pytest.mark.parametrize('by_epoch, expected_steps', [(False, [2, 4]), (True, [1, 2])])
def test_validation_metrics_are_logged_at_their_iteration_or_epoch(tmp_path, by_epoch,
                                                                   expected_steps):
    assert val_steps(tmp_path, by_epoch, 'DetLoggerHook') == expected_steps


def test_mmengine_logger_hook_is_left_as_it_is(tmp_path):
    """Importing detlab changes nothing in mmengine: its LoggerHook still logs
    an iteration-based run's metrics at epoch 0."""
    assert val_steps(tmp_path, False, 'LoggerHook') == [0, 0]
