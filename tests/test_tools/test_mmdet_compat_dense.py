"""MMDetection 3.3's own FCOS and ATSS configs, unchanged, print and build in detlab with
MMDetection's state_dict keys and shapes."""
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
CASES = {
    'fcos': ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'FCOS', 'FCOSHead'),
    'atss': ('atss/atss_r50_fpn_1x_coco.py', 'ATSS', 'ATSSHead'),
}
# What MMDetection 3.3 itself builds from these configs: 369 state_dict entries each, and
# these head entries (measured with mmdet's MODELS.build on the same files).
MMDET_NUM_KEYS = 369
MMDET_HEAD_SHAPES = {
    'fcos': {'bbox_head.conv_cls.weight': (80, 256, 3, 3), 'bbox_head.conv_reg.weight': (4, 256, 3, 3),
             'bbox_head.conv_centerness.weight': (1, 256, 3, 3), 'bbox_head.scales.4.scale': (),
             'bbox_head.cls_convs.3.gn.weight': (256,), 'neck.fpn_convs.4.conv.weight': (256, 256, 3, 3)},
    'atss': {'bbox_head.atss_cls.weight': (80, 256, 3, 3), 'bbox_head.atss_reg.weight': (4, 256, 3, 3),
             'bbox_head.atss_centerness.weight': (1, 256, 3, 3), 'bbox_head.scales.4.scale': (),
             'bbox_head.reg_convs.3.gn.bias': (256,), 'neck.fpn_convs.4.conv.weight': (256, 256, 3, 3)},
}


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(CASES))
def test_print_config_prints_the_merged_config(case):
    path, detector, head = CASES[case]
    result = subprocess.run(
        [sys.executable, 'tools/misc/print_config.py', str(MMDET_CONFIGS / path), '--cfg-options',
         'train_dataloader.batch_size=4'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for merged in (f"type='{detector}'", f"type='{head}'", "type='CocoDataset'",
                   "type='EpochBasedTrainLoop'", 'batch_size=4'):
        assert merged in result.stdout, merged


def build(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('case', sorted(CASES))
def test_mmdet_config_builds_mmdets_state_dict_and_detlabs_config_the_same(case):
    path, detector, _ = CASES[case]
    model = build(MMDET_CONFIGS / path)
    assert type(model).__name__ == detector
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(shapes) == MMDET_NUM_KEYS
    for key, shape in MMDET_HEAD_SHAPES[case].items():
        assert shapes[key] == shape, key
    detlab_model = build(REPO_ROOT / 'configs' / path)
    assert {k: tuple(v.shape) for k, v in detlab_model.state_dict().items()} == shapes
    # A checkpoint of one loads strictly into the other.
    detlab_model.load_state_dict(model.state_dict(), strict=True)


@pytest.mark.parametrize('case', sorted(CASES))
def test_forward_modes_on_a_small_image(case):
    from mmengine.structures import InstanceData

    from detlab.structures import DetDataSample
    model = build(MMDET_CONFIGS / CASES[case][0])
    sample = DetDataSample(metainfo=dict(img_shape=(96, 128), pad_shape=(96, 128),
                                         ori_shape=(48, 64), scale_factor=(2.0, 2.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 60., 80.]]),
                                       labels=torch.tensor([5]))
    inputs = torch.rand(1, 3, 96, 128) * 255
    losses = model(inputs, [sample], mode='loss')
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness'}
    # FCOS returns one number per loss, ATSS a list with one per level (as MMDetection's);
    # what is logged is their sum.
    _, log_vars = model.parse_losses(losses)
    assert all(torch.isfinite(log_vars[key]) for key in losses)
    outs = model(inputs, mode='tensor')
    assert len(outs) == 3 and len(outs[0]) == 5  # scores, boxes, centerness on P3-P7
    model.eval()
    with torch.no_grad():
        result = model(inputs, [sample], mode='predict')[0].pred_instances
    assert result.bboxes.shape[1] == 4 and (result.bboxes[:, 2] <= 64 + 1e-3).all()
