"""The FCOS and ATSS quickstart configs train and evaluate through the tools (a few
iterations on tiny generated data)."""
import math

import pytest

from helpers import assert_ok, last_metric, logged_losses, run_tool, tiny_run_options


@pytest.mark.slow
@pytest.mark.parametrize('name', ['fcos', 'atss'])
def test_quickstart_trains_and_evaluates(name, tmp_path):
    config = f'configs/quickstart/{name}_r18_fpn_shapes.py'
    options = tiny_run_options(tmp_path / 'shapes', max_iters=2)
    work_dir = tmp_path / 'work'
    output = assert_ok(run_tool('tools/train.py', config, '--work-dir', work_dir,
                                '--cfg-options', *options))
    records = logged_losses(work_dir)
    assert [record['iter'] for record in records] == [1, 2]
    for record in records:
        terms = {key: record[key] for key in ('loss_cls', 'loss_bbox', 'loss_centerness')}
        assert all(math.isfinite(value) and value > 0 for value in terms.values()), record
        assert record['loss'] == pytest.approx(sum(terms.values()), rel=1e-4)
    # The checkpoint it wrote evaluates through tools/test.py to the metric of the run.
    checkpoint = work_dir / 'iter_2.pth'
    tested = assert_ok(run_tool('tools/test.py', config, checkpoint, '--work-dir',
                                tmp_path / 'test', '--cfg-options', *options))
    assert last_metric(tested) == pytest.approx(last_metric(output), abs=1e-4)
