"""MobileNetV2 and Darknet-53: MMDetection's module names, widths, freezing and errors
(outputs: test_mmdet_backbone_outputs.py)."""
import pytest
import torch

from helpers import state_dict_signature
from detlab.models.backbones import Darknet, MobileNetV2
from detlab.models.backbones.mobilenet_v2 import make_divisible
from detlab.models.layers import InvertedResidual


def test_make_divisible_rounds_to_the_nearest_multiple_without_losing_over_10_percent():
    assert make_divisible(32 * 0.75, 8) == 24
    assert make_divisible(20, 8) == 24  # 16 would lose 20%
    assert make_divisible(3, 8) == 8
    assert make_divisible(100, 8, min_value=128) == 128


def test_mobilenet_v2_keys_and_widths():
    model = MobileNetV2()
    keys = model.state_dict()
    assert tuple(keys['conv1.conv.weight'].shape) == (32, 3, 3, 3)
    # Stage 1 has no expansion; the others expand 6x before the depthwise conv.
    assert 'layer1.0.expand_conv.conv.weight' not in keys
    assert tuple(keys['layer2.0.expand_conv.conv.weight'].shape) == (96, 16, 1, 1)
    assert tuple(keys['layer2.0.depthwise_conv.conv.weight'].shape) == (96, 1, 3, 3)
    assert tuple(keys['layer7.0.linear_conv.conv.weight'].shape) == (320, 960, 1, 1)
    assert tuple(keys['conv2.conv.weight'].shape) == (1280, 320, 1, 1)
    # (entries, SHA-1 of sorted (key, shape)) of MMDetection 3.3's MobileNetV2(), measured
    # with tools/dev/mmdet_reference.py.
    assert state_dict_signature(model) == (312, '8d9f507e099825ce42dec343ff79724381923462')
    assert state_dict_signature(MobileNetV2(widen_factor=1.5)) == (
        312, '59a35d59e32a54dcb9b0ecbcbfa3cd629cd45fce')
    assert model.layer2[1].with_res_shortcut and not model.layer2[0].with_res_shortcut


def test_mobilenet_v2_freezing_and_norm_eval():
    model = MobileNetV2(frozen_stages=2, norm_eval=True)
    model.train()
    assert not model.conv1.conv.weight.requires_grad
    assert not any(p.requires_grad for p in model.layer2.parameters())
    assert all(p.requires_grad for p in model.layer3.parameters())
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_darknet_keys_strides_and_freezing():
    model = Darknet(depth=53)
    keys = model.state_dict()
    assert tuple(keys['conv_res_block5.res3.conv2.conv.weight'].shape) == (1024, 512, 3, 3)
    assert tuple(keys['conv_res_block1.conv.conv.weight'].shape) == (64, 32, 3, 3)
    # MMDetection 3.3's Darknet(depth=53), measured as above.
    assert state_dict_signature(model) == (312, 'b3b3a5da0bb03f2fe2763a3743f5788c5a826ffe')
    model = Darknet(frozen_stages=2)
    model.train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.conv_res_block1.parameters())
    assert all(p.requires_grad for p in model.conv_res_block2.parameters())


def test_bad_arguments_are_named():
    with pytest.raises(KeyError, match='invalid depth 21'):
        Darknet(depth=21)
    with pytest.raises(ValueError, match=r'out_indices \(6,\)'):
        Darknet(out_indices=(6, ))
    with pytest.raises(ValueError, match='range\\(0, 8\\), got \\(8,\\)'):
        MobileNetV2(out_indices=(8, ))
    with pytest.raises(ValueError, match='frozen_stages'):
        MobileNetV2(frozen_stages=8)
    with pytest.raises(ValueError, match='stride must be 1 or 2, got 3'):
        InvertedResidual(8, 8, 16, stride=3)
    with pytest.raises(ValueError, match="se_cfg"):
        InvertedResidual(8, 8, 16, se_cfg=dict(channels=16))
