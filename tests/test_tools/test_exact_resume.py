"""A run killed with SIGKILL and resumed ends where an uninterrupted run ends.

Checkpoints hold no random state: ``--resume`` re-seeds the run and replays the
data loader up to the checkpoint's iteration, which reproduces the data order
and the augmentations; detlab's training step draws no random numbers. So the
final weights must equal an uninterrupted run's. ``max_keep_ckpts`` and
``save_best`` keep working across the resume.
"""
import pytest
import os
import signal
import subprocess
import sys
import time

import torch

from detlab.utils.checkpoint import load_checkpoint_file
from helpers import QUICKSTART, REPO_ROOT, assert_ok, run_tool, tiny_run_options

MAX_ITERS = 8
KILL_AFTER_VAL_AT = 4  # the checkpoint of iteration 4 is written, then validated


def options(data_root) -> list:
    return [*tiny_run_options(data_root, MAX_ITERS), 'train_cfg.val_interval=2',
            'default_hooks.checkpoint.max_keep_ckpts=2',
            'default_hooks.checkpoint.save_best=coco/bbox_mAP',
            'default_hooks.checkpoint.rule=greater', 'randomness.deterministic=True',
            'default_hooks.visualization.draw=False']


def train_command(data_root, work_dir, *extra) -> list:
    return [sys.executable, 'tools/train.py', QUICKSTART, '--work-dir', str(work_dir), *extra,
            '--cfg-options', *map(str, options(data_root))]


def validated_at(work_dir, step: int) -> bool:
    """Whether the run logged the validation metrics of iteration ``step`` (validation
    runs every 2 iterations; mmengine logs them with step = epoch, 0 here, so count)."""
    lines = [line for scalars in work_dir.glob('*/vis_data/scalars.json')
             for line in scalars.read_text().splitlines() if 'coco/bbox_mAP' in line]
    return len(lines) >= step // 2


def kill_after_validation(command: list, work_dir, step: int, timeout: float = 300) -> None:
    """Start ``command``; SIGKILL it as soon as it has validated iteration ``step``
    (so the best checkpoint so far is the one an uninterrupted run has then)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not validated_at(work_dir, step):
        assert process.poll() is None, f'training ended (rc {process.returncode}) first'
        assert time.monotonic() < deadline, f'no validation at {step} in {timeout} s'
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_sigkill_and_resume_equals_an_uninterrupted_run(tmp_path):
    data_root = tmp_path / 'shapes'
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    assert_ok(run_tool(*train_command(data_root, straight)[1:]))
    kill_after_validation(train_command(data_root, killed), killed, KILL_AFTER_VAL_AT)
    assert not (killed / f'iter_{MAX_ITERS}.pth').exists()
    output = assert_ok(run_tool(*train_command(data_root, killed, '--resume')[1:]))
    assert 'resumed' in output

    expected = load_checkpoint_file(str(straight / f'iter_{MAX_ITERS}.pth'))
    actual = load_checkpoint_file(str(killed / f'iter_{MAX_ITERS}.pth'))
    assert actual['meta']['iter'] == MAX_ITERS
    for part in ('state_dict', 'optimizer'):
        torch.testing.assert_close(actual[part], expected[part], rtol=1e-5, atol=1e-6,
                                   msg=lambda message: f'{part} differs: {message}')
    assert actual['param_schedulers'] == expected['param_schedulers']

    # max_keep_ckpts=2 held across the resume; one best checkpoint, as uninterrupted.
    kept = sorted(path.name for path in killed.glob('iter_*.pth'))
    assert kept == sorted(path.name for path in straight.glob('iter_*.pth'))
    assert len(kept) == 2
    best = [path.name for path in killed.glob('best_coco_bbox_mAP_*.pth')]
    assert best == [path.name for path in straight.glob('best_coco_bbox_mAP_*.pth')]
    assert len(best) == 1
