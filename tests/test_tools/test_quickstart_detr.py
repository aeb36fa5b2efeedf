"""The DINO quickstart config trains and evaluates through the tools (a few iterations on
tiny generated data), with the auxiliary losses logged under MMDetection's names."""
import math

import pytest

from helpers import assert_ok, last_metric, logged_losses, run_tool, tiny_run_options


@pytest.mark.slow
def test_dino_quickstart_trains_and_evaluates(tmp_path):
    config = 'configs/quickstart/dino-4scale_r18_shapes.py'
    options = tiny_run_options(tmp_path / 'shapes', max_iters=2)
    work_dir = tmp_path / 'work'
    output = assert_ok(run_tool('tools/train.py', config, '--work-dir', work_dir,
                                '--cfg-options', *options))
    records = logged_losses(work_dir)
    assert [record['iter'] for record in records] == [1, 2]
    for record in records:
        terms = {k: v for k, v in record.items() if 'loss_' in k}
        assert {'loss_cls', 'd1.loss_bbox', 'enc_loss_iou', 'dn_loss_cls',
                'd0.dn_loss_iou'} <= set(terms)
        assert all(math.isfinite(value) for value in terms.values()), record
        assert record['loss'] == pytest.approx(sum(terms.values()), rel=1e-4)
    checkpoint = work_dir / 'iter_2.pth'
    tested = assert_ok(run_tool('tools/test.py', config, checkpoint, '--work-dir',
                                tmp_path / 'test', '--cfg-options', *options))
    assert last_metric(tested) == pytest.approx(last_metric(output), abs=1e-4)
