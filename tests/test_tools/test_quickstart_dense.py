"""The FCOS and ATSS quickstart configs train and evaluate through the tools (a few
iterations on tiny generated data)."""
import pytest

from test_train_test_resume import assert_ok, last_metric, run_tool, tiny_run_options


@pytest.mark.parametrize('name', ['fcos', 'atss'])
def test_quickstart_trains_and_evaluates(name, tmp_path):
    config = f'configs/quickstart/{name}_r18_fpn_shapes.py'
    result = run_tool('tools/train.py', config, '--work-dir', tmp_path / 'work', '--cfg-options',
                      *tiny_run_options(tmp_path / 'shapes', max_iters=2))
    output = assert_ok(result)
    assert 'loss_centerness' in output and 'loss_bbox' in output
    assert 0.0 <= last_metric(output) <= 1.0
    assert (tmp_path / 'work' / 'iter_2.pth').is_file()
