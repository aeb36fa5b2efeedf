"""End to end through the tools, as a user runs them: train, test, resume, torchrun on CPU."""
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from detlab.engine.mmengine_fixes import load_checkpoint_file

QUICKSTART = 'configs/quickstart/retinanet_r18_fpn_shapes.py'
NUM_VAL = 8


def tiny_run_options(data_root: Path, max_iters: int) -> list:
    """--cfg-options that shrink the quickstart to a few iterations on tiny data."""
    ann_val = f'{data_root}/annotations/instances_val.json'
    options = [
        f'train_cfg.max_iters={max_iters}', f'train_cfg.val_interval={max_iters}',
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=1',
        'train_dataloader.batch_size=4', f'val_evaluator.ann_file={ann_val}',
        f'test_evaluator.ann_file={ann_val}',
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [f'{loader}.num_workers=0', f'{loader}.persistent_workers=False',
                    f'{loader}.dataset.data_root={data_root}/']
    options += ['train_dataloader.dataset.num_images=16',
                f'val_dataloader.dataset.num_images={NUM_VAL}',
                f'test_dataloader.dataset.num_images={NUM_VAL}']
    return options


def run_tool(*args, launcher=None, timeout=600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    command = launcher or [sys.executable]
    result = subprocess.run([*command, *map(str, args)], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result


def assert_ok(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def last_metric(output: str, key: str = 'coco/bbox_mAP') -> float:
    values = re.findall(rf'{re.escape(key)}: ([0-9.]+)', output)
    assert values, f'{key} not found in output'
    return float(values[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    data_root, work_dir = root / 'shapes', root / 'work'
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir,
                      '--cfg-options', *tiny_run_options(data_root, max_iters=4))
    return dict(root=root, data_root=data_root, work_dir=work_dir, output=assert_ok(result))


def test_training_logs_progress_writes_checkpoints_and_tensorboard(trained):
    work_dir, output = trained['work_dir'], trained['output']
    assert re.search(r'Iter\(train\) \[4/4\].*eta.*loss_cls', output)
    assert (work_dir / 'iter_2.pth').is_file() and (work_dir / 'iter_4.pth').is_file()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')
    assert list(work_dir.glob('*/vis_data/events.out.tfevents.*')), 'no TensorBoard events'
    assert 'bbox_mAP_50' in output  # the metric table ends the run
    assert not list(work_dir.glob('.tmp_*')), 'temporary checkpoint files left behind'


def test_test_tool_reproduces_the_metric_and_draws_predictions(trained):
    work_dir = trained['work_dir']
    out_file = trained['root'] / 'preds.json'
    result = run_tool('tools/test.py', QUICKSTART, work_dir / 'iter_4.pth', '--work-dir',
                      work_dir, '--show-dir', 'vis', '--out', out_file, '--cfg-options',
                      *tiny_run_options(trained['data_root'], max_iters=4))
    output = assert_ok(result)
    assert last_metric(output) == pytest.approx(last_metric(trained['output']), abs=1e-3)
    drawn = list(work_dir.glob('*/vis/*.jpg')) + list(work_dir.glob('*/vis/*.png'))
    assert len(drawn) == NUM_VAL
    records = json.loads(out_file.read_text())
    assert len(records) == NUM_VAL
    assert {'img_id', 'img_path', 'pred_instances'} <= set(records[0])


def test_resume_continues_from_the_last_checkpoint(trained):
    work_dir = trained['work_dir']
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir, '--resume',
                      '--cfg-options', *tiny_run_options(trained['data_root'], max_iters=6))
    output = assert_ok(result)
    assert re.search(r'resumed epoch: \d+, iter: 4', output), output[-3000:]
    assert 'Iter(train) [1/6]' not in output and 'Iter(train) [5/6]' in output
    checkpoint = load_checkpoint_file(str(work_dir / 'iter_6.pth'))
    assert checkpoint['meta']['iter'] == 6


def test_num_classes_mismatch_stops_before_training(tmp_path):
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', tmp_path / 'work',
                      '--cfg-options', *tiny_run_options(tmp_path / 'shapes', max_iters=2),
                      'model.bbox_head.num_classes=5')
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'num_classes = 5' in output and '3 classes' in output
    assert 'Iter(train)' not in output


def test_mmdet_scope_config_trains(tmp_path):
    config = tmp_path / 'mmdet_scope.py'
    config.write_text(f"_base_ = '{REPO_ROOT / QUICKSTART}'\ndefault_scope = 'mmdet'\n")
    result = run_tool('tools/train.py', config, '--work-dir', tmp_path / 'work',
                      '--cfg-options', *tiny_run_options(tmp_path / 'shapes', max_iters=2))
    output = assert_ok(result)
    assert output.count("default_scope='mmdet': detlab serves") == 1


def test_torchrun_on_cpu_with_gloo(tmp_path):
    with socket.socket() as probe:  # a free port, so parallel runs don't collide
        probe.bind(('127.0.0.1', 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                f'--master_port={port}']
    result = run_tool('tools/train.py', QUICKSTART, '--launcher', 'pytorch', '--work-dir',
                      tmp_path / 'work', '--cfg-options',
                      *tiny_run_options(tmp_path / 'shapes', max_iters=2), launcher=launcher)
    output = assert_ok(result)
    assert 'Distributed training: True' in output and "dist_cfg: {'backend': 'gloo'}" in output
    assert 'Iter(train) [2/2]' in output and 'bbox_mAP_copypaste' in output
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
