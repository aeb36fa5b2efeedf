"""SSDNeck and SSDVGG: MMDetection's keys, L2 norm init and errors (outputs:
tests/test_models/test_backbones/test_mmdet_backbone_outputs.py)."""
import pytest
import torch

from detlab.models.backbones import SSDVGG
from detlab.models.necks import SSDNeck

SSD300_NECK = dict(in_channels=(512, 1024), out_channels=(512, 1024, 512, 256, 256, 256),
                   level_strides=(2, 2, 1, 1), level_paddings=(1, 1, 0, 0), l2_norm_scale=20)


def test_ssd300_neck_keys_init_and_shapes():
    neck = SSDNeck(**SSD300_NECK)
    shapes = {k: tuple(v.shape) for k, v in neck.state_dict().items()}
    assert shapes['l2_norm.weight'] == (512, )
    assert shapes['extra_layers.0.0.conv.weight'] == (256, 1024, 1, 1)
    assert shapes['extra_layers.0.1.conv.weight'] == (512, 256, 3, 3)
    assert shapes['extra_layers.3.1.conv.weight'] == (256, 128, 3, 3)
    neck.l2_norm.weight.data.zero_()
    neck.init_weights()
    assert torch.all(neck.l2_norm.weight == 20)
    # The default init list is not shared between necks (MMDetection's grows at each build).
    assert len(SSDNeck(**SSD300_NECK).init_cfg) == 3
    feats = neck((torch.rand(1, 512, 38, 38), torch.rand(1, 1024, 19, 19)))
    assert [tuple(f.shape[2:]) for f in feats] == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3),
                                                  (1, 1)]
    assert torch.allclose(feats[0].norm(dim=1), torch.full((1, 38, 38), 20.), rtol=1e-4)


def test_ssd_vgg16_appends_fc6_fc7_to_features():
    model = SSDVGG(depth=16)
    assert tuple(model.features[31].weight.shape) == (1024, 512, 3, 3)
    assert model.features[31].dilation == (6, 6)
    assert tuple(model.features[33].weight.shape) == (1024, 1024, 1, 1)
    assert len(model.features) == 35


def test_bad_neck_levels_are_named():
    with pytest.raises(ValueError, match='level_strides'):
        SSDNeck(in_channels=(512, 1024), out_channels=(512, 1024, 512), level_strides=(2, 2),
                level_paddings=(1, 1))
