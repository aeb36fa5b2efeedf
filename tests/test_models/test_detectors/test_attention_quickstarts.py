"""The RetinaNet+SE and RetinaNet+CBAM quickstart configs build, train a step and keep RetinaNet's keys."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.structures import DetDataSample

CONFIGS = Path(__file__).parents[3] / 'configs' / 'quickstart'


def _build(name):
    model = MODELS.build(Config.fromfile(str(CONFIGS / name)).model)
    model.init_weights()
    return model


@pytest.mark.parametrize('name,plugin_key', [
    ('retinanet_r18-se_fpn_shapes.py', 'backbone.layer1.0.se_block.conv1.conv.weight'),
    ('retinanet_r18-cbam_fpn_shapes.py',
     'backbone.layer4.1.cbam.spatial_attention.conv.weight'),
])
def test_attention_quickstart_adds_plugins_to_the_base_model(name, plugin_key):
    model = _build(name)
    base_keys = set(_build('retinanet_r18_fpn_shapes.py').state_dict())
    keys = set(model.state_dict())
    assert plugin_key in keys
    assert base_keys < keys
    assert all('se_block' in k or 'cbam' in k for k in keys - base_keys)
    sample = DetDataSample(metainfo=dict(img_shape=(64, 64), ori_shape=(64, 64),
                                         scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.]]),
                                       labels=torch.tensor([1]))
    data = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)],
             data_samples=[sample]), training=True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    grads = [p.grad for n, p in model.named_parameters() if 'se_block' in n or 'cbam' in n]
    assert grads and all(g is not None for g in grads)
