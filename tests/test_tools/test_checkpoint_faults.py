"""Bad checkpoints and shared work dirs, through the tools as a user runs them:
each command fails with a message naming the file or key and what to do."""
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from detlab.utils.checkpoint import load_checkpoint_file
from helpers import QUICKSTART, REPO_ROOT, assert_ok, run_tool, tiny_run_options

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A 4-iteration quickstart run: iter_2.pth and iter_4.pth."""
    root = tmp_path_factory.mktemp('faults')
    data_root, work_dir = root / 'shapes', root / 'work'
    assert_ok(run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir,
                       '--cfg-options', *tiny_run_options(data_root, max_iters=4)))
    return dict(data_root=data_root, work_dir=work_dir)


def fresh_work_dir(trained, tmp_path, *names: str):
    """A work dir holding copies of the trained run's checkpoints ``names``."""
    work_dir = tmp_path / 'work'
    work_dir.mkdir()
    for name in names:
        shutil.copy(trained['work_dir'] / name, work_dir / name)
    return work_dir


def train_tool(trained, work_dir, *options, max_iters=6):
    return run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir, *options,
                    '--cfg-options', *tiny_run_options(trained['data_root'], max_iters))


def failed(result: subprocess.CompletedProcess) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    return output


def test_resume_from_a_model_only_checkpoint_says_to_use_load_from(trained, tmp_path):
    work_dir = fresh_work_dir(trained, tmp_path)
    model_only = tmp_path / 'weights.pth'
    torch.save({'state_dict': load_checkpoint_file(
        str(trained['work_dir'] / 'iter_4.pth'))['state_dict']}, model_only)
    output = failed(train_tool(trained, work_dir, '--resume', model_only))
    assert f'{model_only} is not a training checkpoint' in output
    assert f"load_from='{model_only}'" in output and "KeyError: 'epoch'" not in output


def test_resume_from_a_truncated_checkpoint_names_it_and_the_previous_one(trained, tmp_path):
    work_dir = fresh_work_dir(trained, tmp_path, 'iter_2.pth', 'iter_4.pth')
    truncated = work_dir / 'iter_4.pth'
    truncated.write_bytes(truncated.read_bytes()[:4096])
    (work_dir / 'last_checkpoint').write_text(str(truncated))
    output = failed(train_tool(trained, work_dir, '--resume'))
    assert f'Cannot read the checkpoint {truncated}' in output and 'truncated' in output
    assert f'--resume {work_dir / "iter_2.pth"}' in output


@pytest.mark.parametrize('pointer', ['', 'iter_6.pth'])
def test_broken_last_checkpoint_is_named_with_the_checkpoints_there(trained, tmp_path, pointer):
    work_dir = fresh_work_dir(trained, tmp_path, 'iter_2.pth', 'iter_4.pth')
    named = str(work_dir / pointer) if pointer else ''
    (work_dir / 'last_checkpoint').write_text(named)
    output = failed(train_tool(trained, work_dir, '--resume'))
    assert f'{work_dir / "last_checkpoint"}, and that file is at fault' in output
    assert ('it is empty' if not pointer else f'names {named}, which does not exist') in output
    assert 'iter_2.pth, iter_4.pth' in output
    assert f'--resume {work_dir / "iter_4.pth"}' in output


def half_checkpoint(trained, tmp_path):
    """Every other weight of the trained model, and the first key left out."""
    state_dict = load_checkpoint_file(str(trained['work_dir'] / 'iter_4.pth'))['state_dict']
    keys = list(state_dict)
    path = tmp_path / 'half.pth'
    torch.save({'state_dict': {key: state_dict[key] for key in keys[::2]}}, path)
    return path, keys[1]


def run_test_tool(trained, tmp_path, checkpoint, *options, cfg_options=()):
    return run_tool('tools/test.py', QUICKSTART, checkpoint, '--work-dir', tmp_path / 'test',
                    *options, '--cfg-options',
                    *tiny_run_options(trained['data_root'], max_iters=4), *cfg_options)


def test_testing_refuses_a_checkpoint_with_missing_weights(trained, tmp_path):
    partial, missing = half_checkpoint(trained, tmp_path)
    output = failed(run_test_tool(trained, tmp_path, partial))
    assert f'The checkpoint {partial} does not fit the model RetinaNet' in output
    assert f'{missing} missing from the checkpoint' in output
    assert '--allow-partial-checkpoint' in output


def test_testing_refuses_a_checkpoint_of_another_class_count(trained, tmp_path):
    output = failed(run_test_tool(trained, tmp_path, trained['work_dir'] / 'iter_4.pth',
                                  cfg_options=['model.bbox_head.num_classes=7']))
    assert 'bbox_head.retina_cls.weight: checkpoint (27,' in output and 'model (63,' in output


def test_testing_loads_a_partial_checkpoint_when_asked_to(trained, tmp_path):
    partial, _ = half_checkpoint(trained, tmp_path)
    output = assert_ok(run_test_tool(trained, tmp_path, partial, '--allow-partial-checkpoint'))
    assert 'coco/bbox_mAP' in output and 'missing keys in source state_dict' in output


def test_a_second_training_run_in_the_same_work_dir_is_refused(trained, tmp_path):
    work_dir = tmp_path / 'work'
    lock = work_dir / '.train.lock'
    first = subprocess.Popen(
        [sys.executable, 'tools/train.py', QUICKSTART, '--work-dir', str(work_dir),
         '--cfg-options', *tiny_run_options(trained['data_root'], max_iters=1000)],
        cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (lock.is_file() and lock.read_text().startswith('pid')):
            assert first.poll() is None and time.monotonic() < deadline, 'first run never trained'
            time.sleep(0.5)
        output = failed(train_tool(trained, work_dir))
        assert f'Another training run is using the work dir {work_dir}' in output
        assert f'pid {first.pid}' in output and '--work-dir' in output
        assert first.poll() is None  # the first run goes on
    finally:
        first.kill()
        first.wait()
    logs = sorted(work_dir.glob('*/*.log'))
    assert len(logs) == 2  # each run wrote its own log folder
