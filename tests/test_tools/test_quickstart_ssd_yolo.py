"""The SSD and YOLOv3 quickstarts train and validate through tools/train.py on tiny
generated data, and their checkpoints load back into the model."""
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader

from detlab.registry import MODELS
from detlab.utils import register_all_modules
from helpers import assert_ok, run_tool, tiny_run_options

pytestmark = pytest.mark.slow


@pytest.mark.parametrize('config', ['configs/quickstart/ssdlite_mobilenetv2_shapes.py',
                                    'configs/quickstart/yolov3_mobilenetv2_shapes.py'])
def test_quickstart_trains_validates_and_checkpoints(tmp_path, config):
    output = assert_ok(run_tool('tools/train.py', config, '--work-dir', tmp_path / 'work',
                                '--cfg-options', *tiny_run_options(tmp_path / 'shapes', 2)))
    assert 'loss_cls' in output and 'bbox_mAP' in output
    register_all_modules()  # detlab's safe checkpoint loading
    checkpoint = CheckpointLoader.load_checkpoint(str(tmp_path / 'work' / 'iter_2.pth'),
                                                  map_location='cpu')
    model = MODELS.build(Config.fromfile(config).model)
    model.load_state_dict(checkpoint['state_dict'], strict=True)
    assert all(torch.isfinite(value).all() for value in checkpoint['state_dict'].values()
               if value.is_floating_point())
