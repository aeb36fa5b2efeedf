"""MMDetection 3.3's own RetinaNet config, unchanged, prints and builds in detlab."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from detlab.registry import MODELS
from detlab.utils import adopt_default_scope

from helpers import REPO_ROOT

MMDET_CONFIG = REPO_ROOT / 'tests/data/mmdet_3.3_configs/retinanet/retinanet_r50_fpn_1x_coco.py'
DETLAB_CONFIG = REPO_ROOT / 'configs/retinanet/retinanet_r50_fpn_1x_coco.py'


@pytest.mark.slow
@pytest.mark.parametrize('config', [DETLAB_CONFIG, MMDET_CONFIG], ids=['detlab', 'mmdet'])
def test_print_config_prints_the_merged_config(config):
    result = subprocess.run(
        [sys.executable, 'tools/misc/print_config.py', str(config), '--cfg-options',
         'train_dataloader.batch_size=4'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    for merged in ("type='RetinaNet'", "add_extra_convs='on_input'", "type='CocoDataset'",
                   "type='EpochBasedTrainLoop'", "type='DetLocalVisualizer'", 'lr=0.01',
                   'batch_size=4'):
        assert merged in text, merged


def build_model(config):
    cfg = Config.fromfile(str(config))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # torchvision:// would need a download
    return cfg, MODELS.build(cfg.model)


def test_mmdet_config_builds_the_same_model_as_detlabs():
    mmdet_cfg, mmdet_model = build_model(MMDET_CONFIG)
    _, detlab_model = build_model(DETLAB_CONFIG)
    assert mmdet_cfg.default_scope == 'detlab'
    assert type(mmdet_model).__name__ == 'RetinaNet'
    shapes = {k: v.shape for k, v in mmdet_model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in detlab_model.state_dict().items()}


def test_unknown_type_names_the_registry_and_close_names():
    with pytest.raises(KeyError) as error:
        MODELS.build(dict(type='RetinaNett'))
    message = str(error.value)
    assert 'model registry' in message and 'RetinaNet' in message
