"""Models by config name: MMDetection's checkpoint URLs, weights from the torch hub cache, the
error that says where to put them, and demo/image_demo.py with an RTMDet-tiny checkpoint."""
import json
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from detlab.apis import DetInferencer, model_zoo_cache_path, model_zoo_weights
from detlab.datasets import CocoDataset
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT, assert_ok, run_tool

RTMDET_TINY = 'rtmdet_tiny_8xb32-300e_coco'
# From MMDetection 3.3's configs/rtmdet/metafile.yml.
RTMDET_TINY_URL = ('https://download.openmmlab.com/mmdetection/v3.0/rtmdet/'
                   'rtmdet_tiny_8xb32-300e_coco/'
                   'rtmdet_tiny_8xb32-300e_coco_20220902_112414-78e30dcc.pth')


def test_every_config_is_listed_with_its_checkpoint_url():
    models = DetInferencer.list_models(with_weights=True)
    assert list(models) == DetInferencer.list_models()
    assert models[RTMDET_TINY] == RTMDET_TINY_URL
    assert models['retinanet_r18_fpn_shapes'] is None  # trained by the quickstart, not published
    assert not any(name.endswith('_tta') for name in models)  # pieces of configs
    for name in ('rtmdet_s_8xb32-300e_coco', 'rtmdet_m_8xb32-300e_coco',
                 'rtmdet_l_8xb32-300e_coco', 'rtmdet_x_8xb32-300e_coco',
                 'rtmdet_x_p6_4xb8-300e_coco', 'retinanet_r50_fpn_1x_coco',
                 'faster-rcnn_r50_fpn_1x_coco', 'fcos_r50-caffe_fpn_gn-head_1x_coco',
                 'atss_r50_fpn_1x_coco', 'rpn_r50_fpn_1x_coco'):
        url = models[name]
        assert url.startswith('https://') and url.endswith('.pth'), name
    assert model_zoo_weights(str(REPO_ROOT / 'configs/rtmdet' / f'{RTMDET_TINY}.py')) is None


def rtmdet_tiny_checkpoint(path: Path) -> dict:
    """An RTMDet-tiny checkpoint with random weights, in MMDetection's format."""
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/rtmdet' / f'{RTMDET_TINY}.py'))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None
    torch.manual_seed(0)
    state_dict = {}
    for key, value in MODELS.build(cfg.model).state_dict().items():
        if key.endswith('running_var'):  # positive, or every output is NaN
            state_dict[key] = torch.rand(value.shape) + 0.5
        elif value.is_floating_point():
            state_dict[key] = torch.randn(value.shape) * 0.05
        else:
            state_dict[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(meta=dict(mmdet_version='3.3.0', epoch=300,
                              dataset_meta=dict(classes=CocoDataset.METAINFO['classes'])),
                    state_dict=state_dict), path)
    return state_dict


def test_a_name_loads_its_weights_from_the_hub_cache_or_says_where_to_put_them(
        tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cached = Path(model_zoo_cache_path(RTMDET_TINY))
    assert cached == tmp_path / 'hub/checkpoints' / RTMDET_TINY_URL.rsplit('/', 1)[1]
    with pytest.raises(RuntimeError) as error:
        DetInferencer(RTMDET_TINY, device='cpu', show_progress=False)
    assert RTMDET_TINY_URL in str(error.value) and str(cached) in str(error.value)
    state_dict = rtmdet_tiny_checkpoint(cached)
    inferencer = DetInferencer(RTMDET_TINY, device='cpu', show_progress=False)
    key = 'bbox_head.rtm_cls.0.weight'
    assert torch.equal(inferencer.model.state_dict()[key], state_dict[key])
    assert len(inferencer.model.dataset_meta['classes']) == 80


@pytest.mark.slow
def test_image_demo_runs_rtmdet_tiny_by_name(tmp_path):
    checkpoint = tmp_path / 'rtmdet_tiny.pth'
    rtmdet_tiny_checkpoint(checkpoint)
    out_dir = tmp_path / 'out'
    output = assert_ok(run_tool('demo/image_demo.py', 'demo/demo.jpg', RTMDET_TINY,
                                '--weights', checkpoint, '--device', 'cpu',
                                '--out-dir', out_dir, '--pred-score-thr', '0.0'))
    assert f'Results have been saved at {out_dir}' in output
    assert (out_dir / 'vis/demo.jpg').is_file()
    record = json.loads((out_dir / 'preds/demo.json').read_text())
    assert len(record['labels']) == len(record['scores']) == len(record['bboxes']) > 0
    assert all(0 <= label < 80 for label in record['labels'])
