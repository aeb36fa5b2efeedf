"""RegNet: MMDetection's arch rule, stage widths, groups and stem (outputs:
test_mmdet_backbone_outputs.py)."""
import pytest
import torch

from detlab.models.backbones import RegNet
from detlab.models.backbones.regnet import regnet_stages

# Output channels of each arch as MMDetection 3.3's RegNet builds them (its FPN
# in_channels in configs/regnet, e.g. [96, 192, 432, 1008] for 3.2GF).
MMDET_STAGE_WIDTHS = {
    'regnetx_400mf': [32, 64, 160, 384],
    'regnetx_800mf': [64, 128, 288, 672],
    'regnetx_1.6gf': [72, 168, 408, 912],
    'regnetx_3.2gf': [96, 192, 432, 1008],
    'regnetx_4.0gf': [80, 240, 560, 1360],
    'regnetx_6.4gf': [168, 392, 784, 1624],
    'regnetx_8.0gf': [80, 240, 720, 1920],
    'regnetx_12gf': [224, 448, 896, 2240],
}


@pytest.mark.parametrize('arch', sorted(MMDET_STAGE_WIDTHS))
def test_every_mmdet_arch_string_gives_its_stage_widths(arch):
    assert regnet_stages(RegNet.arch_settings[arch])[0] == MMDET_STAGE_WIDTHS[arch]
    assert set(RegNet.arch_settings) == set(MMDET_STAGE_WIDTHS)


def test_regnetx_3_2gf_layout():
    model = RegNet('regnetx_3.2gf').eval()
    assert model.stage_blocks == [2, 6, 15, 2] and model.depth == 25
    assert model.out_channels == (96, 192, 432, 1008) and model.feat_dim == 1008
    assert tuple(model.conv1.weight.shape) == (32, 3, 3, 3) and not hasattr(model, 'maxpool')
    # 96 channels in groups of 48 in stage 1: two groups.
    assert model.layer1[0].conv2.groups == 2
    assert tuple(model.layer1[0].conv2.weight.shape) == (96, 48, 3, 3)
    feats = model(torch.rand(1, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(1, 96, 8, 8), (1, 192, 4, 4), (1, 432, 2, 2),
                                               (1, 1008, 1, 1)]


def test_bottleneck_ratio_narrows_the_block_and_group_width_is_capped():
    widths, groups, blocks = regnet_stages(dict(w0=24, wa=36.44, wm=2.49, group_w=8, depth=13,
                                                bot_mul=0.5))
    assert widths == [32, 64, 160, 368] and groups == [8] * 4 and blocks == [1, 1, 4, 7]
    model = RegNet(dict(w0=24, wa=36.44, wm=2.49, group_w=8, depth=13, bot_mul=0.5))
    assert model.layer4[0].conv1.out_channels == 184 and model.layer4[0].conv2.groups == 23
    assert regnet_stages(dict(w0=8, wa=8.0, wm=2.0, group_w=64, depth=4, bot_mul=1.0))[1][0] == 8


def test_frozen_stem_and_first_stage():
    model = RegNet('regnetx_400mf', frozen_stages=1)
    model.train()
    assert not model.conv1.weight.requires_grad and not model.bn1.training
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())


def test_bad_archs_are_named():
    with pytest.raises(KeyError, match="unknown arch 'regnetx_3gf'.*regnetx_3.2gf"):
        RegNet('regnetx_3gf')
    with pytest.raises(ValueError, match=r"lacks \['bot_mul'\]"):
        RegNet(dict(w0=24, wa=36.44, wm=2.49, group_w=8, depth=13))
    with pytest.raises(ValueError, match='multiple of 8'):
        RegNet(dict(w0=20, wa=36.44, wm=2.49, group_w=8, depth=13, bot_mul=1.0))
    with pytest.raises(ValueError, match='one entry per stage'):
        RegNet(dict(w0=48, wa=20.0, wm=2.3, group_w=24, depth=12, bot_mul=1.0))
    with pytest.raises(TypeError, match='str or a dict'):
        RegNet(3.2)
    with pytest.raises(ValueError, match='deep_stem'):
        RegNet('regnetx_400mf', deep_stem=True)
