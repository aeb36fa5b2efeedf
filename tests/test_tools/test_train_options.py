"""tools/train.py options: --amp modes, default hooks, --auto-scale-lr logging."""
import logging
import math
import sys

import pytest
import torch
from mmengine.config import Config

from detlab.engine.runner import DetRunner
from detlab.utils.checkpoint import load_checkpoint_file
from helpers import (QUICKSTART, REPO_ROOT, assert_ok, load_tool, logged_losses, run_tool,
                     tiny_run_options)
from toy_model import TinyModel

train = load_tool('tools/train.py')


def parse(monkeypatch, *options):
    monkeypatch.setattr(sys, 'argv', ['train.py', str(REPO_ROOT / QUICKSTART), *options])
    return train.build_cfg(train.parse_args())


def test_amp_bf16_means_autocast_without_loss_scaling(monkeypatch):
    cfg = parse(monkeypatch, '--amp', 'bf16')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.dtype == 'bfloat16' and cfg.optim_wrapper.loss_scale is None
    assert cfg.optim_wrapper.clip_grad.max_norm == 10  # the rest of the wrapper is kept


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU-only message')
def test_amp_fp16_without_cuda_says_what_to_use(monkeypatch):
    with pytest.raises(SystemExit, match='--amp bf16'):
        parse(monkeypatch, '--amp')


def test_default_hooks_guard_classes_and_nonfinite_losses_and_count_skips(monkeypatch, tmp_path):
    cfg = parse(monkeypatch, '--work-dir', str(tmp_path))
    assert cfg.runner_type == 'DetRunner'
    hooks = [type(hook).__name__ for hook in DetRunner.from_cfg(cfg).hooks]
    assert hooks.count('NumClassCheckHook') == 1 and hooks.count('NonFiniteLossHook') == 1
    assert hooks.count('BadSampleHook') == 1
    assert 'DetCheckpointHook' in hooks and 'DetLoggerHook' in hooks
    # a config that has it already, among its default_hooks, does not get a second one
    cfg = parse(monkeypatch, '--work-dir', str(tmp_path), '--cfg-options',
                'default_hooks.skips.type=BadSampleHook')
    hooks = [type(hook).__name__ for hook in DetRunner.from_cfg(cfg).hooks]
    assert hooks.count('BadSampleHook') == 1


def test_auto_scale_lr_logs_base_and_scaled_lr(tmp_path):
    runner = DetRunner(
        model=TinyModel(), work_dir=str(tmp_path),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2))] * 8, batch_size=4,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        auto_scale_lr=dict(enable=True, base_batch_size=16), default_scope='detlab',
        log_level=logging.INFO, experiment_name=f'scale-lr-{tmp_path.name}')
    runner.train()
    log = (tmp_path / runner.timestamp / f'{runner.timestamp}.log').read_text()
    assert 'auto_scale_lr: base_batch_size 16, actual batch size 1 processes x 4' in log
    assert 'learning rate 0.01 -> 0.0025' in log
    assert runner.optim_wrapper.param_groups[0]['lr'] == pytest.approx(0.0025)


@pytest.mark.slow
def test_quickstart_trains_in_bf16_on_the_cpu(tmp_path):
    work_dir = tmp_path / 'work'
    output = assert_ok(run_tool('tools/train.py', QUICKSTART, '--amp', 'bf16', '--work-dir',
                                work_dir, '--cfg-options',
                                *tiny_run_options(tmp_path / 'shapes', max_iters=2),
                                'train_cfg.val_interval=100'))
    assert 'Iter(train) [2/2]' in output
    checkpoint = load_checkpoint_file(str(work_dir / 'iter_2.pth'))
    # The run's config says bf16 autocast without a loss scaler ...
    cfg = Config.fromstring(checkpoint['meta']['cfg'], '.py')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.dtype == 'bfloat16'
    assert 'loss_scaler' not in checkpoint
    # ... while the weights it trains stay float32, finite, and moved by the two steps.
    weights = checkpoint['state_dict']
    assert all(value.dtype == torch.float32 for value in weights.values() if value.is_floating_point())
    assert all(torch.isfinite(value).all() for value in weights.values())
    records = logged_losses(work_dir)
    assert [record['iter'] for record in records] == [1, 2]
    assert all(math.isfinite(record['loss']) for record in records)
