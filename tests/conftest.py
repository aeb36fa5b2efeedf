"""Shared test helpers: the repo root, the coco128 folder, detlab's registries, running
the tools, and one quickstart model trained for a few iterations (session-wide)."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO128 = REPO_ROOT.parent / 'shared' / 'data' / 'coco128'
QUICKSTART = 'configs/quickstart/retinanet_r18_fpn_shapes.py'
NUM_VAL = 8


@pytest.fixture(scope='session', autouse=True)
def _detlab_scope():
    from detlab.utils import register_all_modules
    register_all_modules()


@pytest.fixture
def coco128() -> Path:
    if not (COCO128 / 'annotations' / 'instances_train2017.json').is_file():
        pytest.skip(f'coco128 not found at {COCO128} (it lives beside the repo, in ../shared)')
    return COCO128


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


def free_port() -> int:
    """A free TCP port on localhost, so parallel torchrun jobs don't collide."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


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


#: Score threshold of the briefly trained quickstart model: after a few
#: iterations every score is near the focal-loss prior 0.01, so the default
#: 0.05 would leave no boxes to compare.
QUICKSTART_TEST_SCORE_THR = 0.005


@pytest.fixture(scope='session')
def quickstart_model(tmp_path_factory) -> dict:
    """The quickstart RetinaNet trained for 4 iterations on 16 generated images.

    Returns:
        dict: ``config`` (a config file inheriting the quickstart with a low
        test score threshold), ``checkpoint``, ``options`` (the --cfg-options
        of the tiny run), ``val_dir`` (its validation folder), ``val_images``
        (the 8 image files in it) and ``root``.
    """
    root = tmp_path_factory.mktemp('quickstart')
    data_root = root / 'shapes'
    config = root / 'quickstart_tiny.py'
    config.write_text(f"_base_ = '{REPO_ROOT / QUICKSTART}'\n"
                      f'model = dict(test_cfg=dict(score_thr={QUICKSTART_TEST_SCORE_THR}))\n')
    options = tiny_run_options(data_root, max_iters=4)
    assert_ok(run_tool('tools/train.py', config, '--work-dir', root / 'work', '--cfg-options',
                       *options))
    val_dir = data_root / 'val'
    val_images = sorted(path for path in val_dir.iterdir() if path.suffix in ('.jpg', '.png'))
    return dict(config=config, checkpoint=root / 'work' / 'iter_4.pth', options=options,
                val_dir=val_dir, val_images=val_images, root=root)


@pytest.fixture(scope='session')
def quickstart_test_predictions(quickstart_model) -> dict:
    """``tools/test.py --out`` predictions of :func:`quickstart_model` on its
    validation images (batch 1), by image file name."""
    import json
    out_file = quickstart_model['root'] / 'test_preds.json'
    assert_ok(run_tool('tools/test.py', quickstart_model['config'], quickstart_model['checkpoint'],
                       '--work-dir', quickstart_model['root'] / 'test', '--out', out_file,
                       '--cfg-options', *quickstart_model['options'],
                       'test_dataloader.batch_size=1'))
    return {Path(record['img_path']).name: record['pred_instances']
            for record in json.loads(out_file.read_text())}
