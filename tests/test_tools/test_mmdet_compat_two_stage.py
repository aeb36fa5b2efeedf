"""MMDetection 3.3's own Faster R-CNN config, unchanged, prints and builds in detlab; the
two-stage quickstart goes through tools/train.py and tools/test.py."""
import math
import subprocess
import sys

import pytest
from mmengine.config import Config

from helpers import REPO_ROOT, assert_ok, last_metric, logged_losses, run_tool, tiny_run_options
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope

MMDET_CONFIG = REPO_ROOT / 'tests/data/mmdet_3.3_configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
DETLAB_CONFIG = REPO_ROOT / 'configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
RPN_CONFIG = REPO_ROOT / 'configs/rpn/rpn_r50_fpn_1x_coco.py'
QUICKSTART = 'configs/quickstart/faster-rcnn_r18_fpn_shapes.py'

# A sample of MMDetection 3.3's state_dict for faster-rcnn_r50_fpn (348 entries).
MMDET_SHAPES = {
    'rpn_head.rpn_conv.weight': (256, 256, 3, 3), 'rpn_head.rpn_cls.weight': (3, 256, 1, 1),
    'rpn_head.rpn_reg.weight': (12, 256, 1, 1),
    'roi_head.bbox_head.fc_cls.weight': (81, 1024), 'roi_head.bbox_head.fc_reg.weight': (320, 1024),
    'roi_head.bbox_head.shared_fcs.0.weight': (1024, 12544),
    'roi_head.bbox_head.shared_fcs.1.weight': (1024, 1024),
    'neck.fpn_convs.3.conv.weight': (256, 256, 3, 3),
}


@pytest.mark.slow
@pytest.mark.parametrize('config', [DETLAB_CONFIG, MMDET_CONFIG, RPN_CONFIG],
                         ids=['detlab', 'mmdet', 'rpn'])
def test_print_config_prints_the_merged_config(config):
    result = subprocess.run(
        [sys.executable, 'tools/misc/print_config.py', str(config)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = "type='RPN'" if config == RPN_CONFIG else "type='StandardRoIHead'"
    for merged in (expected, "type='RPNHead'", "type='RandomSampler'", "type='CocoDataset'",
                   'lr=0.02'):
        assert merged in result.stdout, merged


def build_model(config):
    cfg = Config.fromfile(str(config))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # torchvision:// would need the file
    return MODELS.build(cfg.model)


def test_mmdet_config_builds_mmdetections_state_dict():
    mmdet_model = build_model(MMDET_CONFIG)
    assert type(mmdet_model).__name__ == 'FasterRCNN'
    shapes = {k: tuple(v.shape) for k, v in mmdet_model.state_dict().items()}
    assert len(shapes) == 348
    assert all(shapes[key] == shape for key, shape in MMDET_SHAPES.items())
    assert shapes == {k: tuple(v.shape) for k, v in build_model(DETLAB_CONFIG).state_dict().items()}
    rpn = build_model(RPN_CONFIG)
    assert type(rpn).__name__ == 'RPN'
    assert tuple(rpn.state_dict()['bbox_head.rpn_cls.weight'].shape) == (3, 256, 1, 1)


@pytest.mark.slow
def test_quickstart_trains_and_tests_through_the_tools(tmp_path):
    data_root, work_dir = tmp_path / 'shapes', tmp_path / 'work'
    options = tiny_run_options(data_root, max_iters=2)
    output = assert_ok(run_tool('tools/train.py', QUICKSTART, '--work-dir', work_dir,
                                '--cfg-options', *options))
    records = logged_losses(work_dir)
    assert [record['iter'] for record in records] == [1, 2]
    for record in records:
        terms = {key: record[key] for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls',
                                              'loss_bbox')}
        assert all(math.isfinite(value) and value >= 0 for value in terms.values()), record
        assert record['loss'] == pytest.approx(sum(terms.values()), rel=1e-4)
        assert 0 <= record['acc'] <= 100
    tested = assert_ok(run_tool('tools/test.py', QUICKSTART, work_dir / 'iter_2.pth',
                                '--work-dir', tmp_path / 'test', '--cfg-options', *options))
    # The checkpoint evaluates through tools/test.py to the metric of the run's validation.
    assert last_metric(tested) == pytest.approx(last_metric(output), abs=1e-4)
