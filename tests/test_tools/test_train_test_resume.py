"""End to end through the tools, as a user runs them: train, test, resume (torchrun: test_distributed)."""
import json
import re

import pytest

from helpers import (NUM_VAL, QUICKSTART, REPO_ROOT, assert_ok, last_metric, run_tool,
                     tiny_run_options)
from detlab.utils.checkpoint import load_checkpoint_file


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp('e2e')
    data_root, work_dir = root / 'shapes', root / 'work'
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir,
                      '--cfg-options', *tiny_run_options(data_root, max_iters=4))
    return dict(root=root, data_root=data_root, work_dir=work_dir, output=assert_ok(result))


@pytest.mark.slow
def test_training_logs_progress_writes_checkpoints_and_tensorboard(trained):
    work_dir, output = trained['work_dir'], trained['output']
    assert re.search(r'Iter\(train\) \[4/4\].*eta.*loss_cls', output)
    assert (work_dir / 'iter_2.pth').is_file() and (work_dir / 'iter_4.pth').is_file()
    assert (work_dir / 'last_checkpoint').read_text().strip().endswith('iter_4.pth')
    assert list(work_dir.glob('*/vis_data/events.out.tfevents.*')), 'no TensorBoard events'
    assert 'bbox_mAP_50' in output  # the metric table ends the run
    assert not list(work_dir.glob('.tmp_*')), 'temporary checkpoint files left behind'


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(trained):
    work_dir = trained['work_dir']
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir, '--resume',
                      '--cfg-options', *tiny_run_options(trained['data_root'], max_iters=6))
    output = assert_ok(result)
    assert re.search(r'resumed epoch: \d+, iter: 4', output), output[-3000:]
    assert 'Iter(train) [1/6]' not in output and 'Iter(train) [5/6]' in output
    checkpoint = load_checkpoint_file(str(work_dir / 'iter_6.pth'))
    assert checkpoint['meta']['iter'] == 6


@pytest.mark.slow
def test_num_classes_mismatch_stops_before_training(tmp_path):
    result = run_tool('tools/train.py', QUICKSTART, '--work-dir', tmp_path / 'work',
                      '--cfg-options', *tiny_run_options(tmp_path / 'shapes', max_iters=2),
                      'model.bbox_head.num_classes=5')
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert 'num_classes = 5' in output and '3 classes' in output
    assert 'Iter(train)' not in output


@pytest.mark.slow
def test_mmdet_scope_config_trains(tmp_path):
    config = tmp_path / 'mmdet_scope.py'
    config.write_text(f"_base_ = '{REPO_ROOT / QUICKSTART}'\ndefault_scope = 'mmdet'\n")
    result = run_tool('tools/train.py', config, '--work-dir', tmp_path / 'work',
                      '--cfg-options', *tiny_run_options(tmp_path / 'shapes', max_iters=2))
    output = assert_ok(result)
    assert output.count("default_scope='mmdet': detlab serves") == 1

