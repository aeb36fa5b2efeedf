"""ResNet options beyond the defaults: plugins, act_cfg, norm_cfg, caffe style, V1d, init, DCN."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detlab.models.backbones import Bottleneck
from detlab.models.layers import ResLayer
from detlab.registry import MODELS

IMG = torch.rand(1, 3, 64, 64)


def small_resnet(**kwargs):
    cfg = dict(type='ResNet', depth=18, base_channels=8)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model.eval()


def test_se_and_cbam_plugins_keys_follow_mmdetection_naming_and_keep_shapes():
    plugins = [
        dict(cfg=dict(type='SEBlock', ratio=4), stages=(False, True, True, False),
             position='after_conv2'),
        dict(cfg=dict(type='CBAM', ratio=4, postfix='1'), stages=(False, False, True, True),
             position='after_conv1'),
    ]
    model = small_resnet(plugins=plugins)
    keys = model.state_dict().keys()
    assert 'layer2.0.se_block.conv1.conv.weight' in keys
    assert 'layer3.1.se_block.conv2.conv.bias' in keys
    assert not any(k.startswith(('layer1.0.se_block', 'layer4.0.se_block')) for k in keys)
    assert 'layer3.0.cbam1.channel_attention.fc1.conv.weight' in keys
    assert 'layer4.1.cbam1.spatial_attention.conv.weight' in keys
    assert not any('cbam' in k for k in keys if k.startswith(('layer1', 'layer2')))
    plain = small_resnet()
    with torch.no_grad():
        shapes = [f.shape for f in model(IMG)]
        assert shapes == [f.shape for f in plain(IMG)]
    # With plugins removed from the state dict, the rest loads into the plain model.
    stripped = {k: v for k, v in model.state_dict().items() if 'se_block' not in k
                and 'cbam' not in k}
    plain.load_state_dict(stripped, strict=True)


def test_plugin_runs_at_its_position():
    """An after_conv1 SE in a Bottleneck rescales conv1's activations before conv2."""
    torch.manual_seed(0)
    block = Bottleneck(inplanes=16, planes=4, plugins=[
        dict(cfg=dict(type='SEBlock', ratio=2), position='after_conv1')]).eval()
    x = torch.randn(1, 16, 6, 6)
    with torch.no_grad():
        out1 = torch.relu(block.bn1(block.conv1(x)))
        out1 = block.se_block(out1)
        out2 = torch.relu(block.bn2(block.conv2(out1)))
        expected = torch.relu(block.bn3(block.conv3(out2)) + x)
        assert torch.allclose(block(x), expected, atol=1e-6)


def test_bottleneck_after_conv3_plugin_gets_expanded_channels():
    model = MODELS.build(dict(type='ResNet', depth=50, base_channels=4, plugins=[
        dict(cfg=dict(type='SEBlock', ratio=4), position='after_conv3')]))
    assert model.layer1[0].se_block.conv1.conv.in_channels == 16
    assert model.layer4[2].se_block.conv1.conv.in_channels == 128
    assert [f.shape[1] for f in model.eval()(IMG)] == [16, 32, 64, 128]


@pytest.mark.parametrize('plugins,match', [
    ([dict(cfg=dict(type='SEBlock'), position='after_conv4')], 'position'),
    ([dict(cfg=dict(type='SEBlock'))], 'position'),
    ([dict(cfg=dict(type='SEBlock'), position='after_conv1', stages=(True, ))], 'stages'),
    ([dict(cfg=dict(type='SEBlock'), position='after_conv1', where=1)], 'unknown keys'),
    ([dict(cfg=dict(type='SEBlock'), position='after_conv3')], 'after_conv3'),
    ([dict(cfg=dict(type='SEBlock'), position='after_conv1')] * 2, 'postfix'),
])
def test_bad_plugins_are_named(plugins, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(type='ResNet', depth=18, base_channels=8, plugins=plugins))


@pytest.mark.parametrize('act_type,module', [('ReLU', nn.ReLU), ('LeakyReLU', nn.LeakyReLU),
                                             ('PReLU', nn.PReLU), ('ELU', nn.ELU),
                                             ('SiLU', nn.SiLU), ('GELU', nn.GELU)])
def test_act_cfg_builds_each_activation(act_type, module):
    model = small_resnet(act_cfg=dict(type=act_type))
    assert isinstance(model.relu, module) and isinstance(model.layer3[1].relu, module)
    assert model(IMG)[-1].shape == (1, 64, 2, 2)
    has_slope = any(k.endswith('relu.weight') for k in model.state_dict())
    assert has_slope == (act_type == 'PReLU')


def test_act_cfg_is_used_in_the_block_math():
    torch.manual_seed(0)
    model = small_resnet(act_cfg=dict(type='LeakyReLU', negative_slope=0.2))
    block = model.layer2[0]
    x = torch.randn(1, 8, 8, 8)
    act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    with torch.no_grad():
        out = act(block.bn1(block.conv1(x)))
        expected = act(block.bn2(block.conv2(out)) + block.downsample(x))
        assert torch.allclose(block(x), expected, atol=1e-6)


@pytest.mark.parametrize('norm_cfg,norm_type,prefix', [
    (dict(type='BN'), nn.BatchNorm2d, 'bn'),
    (dict(type='SyncBN'), nn.SyncBatchNorm, 'bn'),
    (dict(type='GN', num_groups=4), nn.GroupNorm, 'gn'),
])
def test_norm_cfg_types_and_keys(norm_cfg, norm_type, prefix):
    model = small_resnet(norm_cfg=norm_cfg, norm_eval=False).train()
    assert isinstance(model.layer1[0].norm1, norm_type)
    keys = model.state_dict().keys()
    assert f'{prefix}1.weight' in keys and f'layer2.0.{prefix}2.weight' in keys
    assert f'layer2.0.downsample.1.weight' in keys
    out = model(torch.rand(2, 3, 32, 32))
    assert out[0].shape == (2, 8, 8, 8)


def test_resnet_v1d_deep_stem_and_avg_down():
    model = MODELS.build(dict(type='ResNetV1d', depth=50, base_channels=4)).eval()
    keys = model.state_dict().keys()
    assert 'stem.0.weight' in keys and 'stem.7.weight' in keys and 'conv1.weight' not in keys
    assert isinstance(model.layer2[0].downsample[0], nn.AvgPool2d)
    assert 'layer2.0.downsample.1.weight' in keys and 'layer2.0.downsample.2.weight' in keys
    assert [tuple(f.shape[-2:]) for f in model(IMG)] == [(16, 16), (8, 8), (4, 4), (2, 2)]


def _bottleneck_by_hand(block, x, conv1_stride, conv2_stride):
    """The Bottleneck of ``block``'s weights with explicit strides, BN in eval form."""

    def bn(t, norm):
        return F.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias,
                            False, 0.0, norm.eps)

    out = F.relu(bn(F.conv2d(x, block.conv1.weight, stride=conv1_stride), block.bn1))
    out = F.relu(bn(F.conv2d(out, block.conv2.weight, stride=conv2_stride, padding=1),
                    block.bn2))
    out = bn(F.conv2d(out, block.conv3.weight), block.bn3)
    shortcut = bn(F.conv2d(x, block.downsample[0].weight, stride=2), block.downsample[1])
    return F.relu(out + shortcut)


@pytest.mark.parametrize('style,strides', [('pytorch', (1, 2)), ('caffe', (2, 1))])
def test_caffe_and_pytorch_style_numbers(style, strides):
    torch.manual_seed(0)
    layer = ResLayer(Bottleneck, inplanes=8, planes=4, num_blocks=1, stride=2, style=style)
    for module in layer.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    layer.eval()
    x = torch.randn(1, 8, 7, 7)
    with torch.no_grad():
        out = layer(x)
        assert out.shape == (1, 16, 4, 4)
        assert torch.allclose(out, _bottleneck_by_hand(layer[0], x, *strides), atol=1e-5)
        other = _bottleneck_by_hand(layer[0], x, *reversed(strides))
        assert not torch.allclose(out, other, atol=1e-3)


def test_caffe2xavier_init_is_caffe2_xavier_fill():
    """Caffe2's XavierFill: uniform in +-sqrt(3 / fan_in), zero bias (MMDetection's FCOS/FPN)."""
    torch.manual_seed(0)
    model = small_resnet(init_cfg=dict(type='Caffe2Xavier', layer='Conv2d'))
    weight = model.layer4[0].conv2.weight
    fan_in = weight.shape[1] * weight.shape[2] * weight.shape[3]
    bound = math.sqrt(3 / fan_in)
    assert weight.abs().max() <= bound
    assert weight.abs().max() > 0.9 * bound
    assert abs(weight.std().item() - 1 / math.sqrt(fan_in)) < 0.1 / math.sqrt(fan_in)


@pytest.mark.parametrize('kwargs,key', [
    (dict(depth=18, dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
          stage_with_dcn=(False, True, True, True)), 'dcn=.*only available in Bottleneck'),
    (dict(depth=50, dcn=dict(type='DCN'), stage_with_dcn=(True, True)), 'stage_with_dcn'),
    (dict(depth=50, dcn=dict(type='DCNv3'), stage_with_dcn=(True, ) * 4), "'DCNv3'"),
    (dict(depth=50, conv_cfg=dict(type='DCNv2')), 'conv_cfg=.*use dcn='),
])
def test_unbuildable_dcn_configs_get_an_error_naming_the_key(kwargs, key):
    with pytest.raises(ValueError, match=key):
        MODELS.build(dict(type='ResNet', **kwargs))


def test_dcn_stages_get_mmcv_deformable_convs_and_fallback_keeps_plain_convs():
    from detlab.models.layers import DeformConv2dPack, ModulatedDeformConv2dPack
    model = MODELS.build(dict(type='ResNet', depth=50,
                              dcn=dict(type='DCNv2', deform_groups=4, fallback_on_stride=False),
                              stage_with_dcn=(False, True, False, True)))
    kinds = [type(getattr(model, f'layer{i}')[1].conv2) for i in range(1, 5)]
    assert kinds == [torch.nn.Conv2d, ModulatedDeformConv2dPack, torch.nn.Conv2d,
                     ModulatedDeformConv2dPack]
    assert tuple(model.layer2[0].conv2.conv_offset.weight.shape) == (108, 128, 3, 3)
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv2.bias is None
    dcn = MODELS.build(dict(type='ResNet', depth=50, dcn=dict(type='DCN'),
                            stage_with_dcn=(False, False, False, True)))
    assert isinstance(dcn.layer4[2].conv2, DeformConv2dPack)
    fallback = MODELS.build(dict(type='ResNet', depth=50,
                                 dcn=dict(type='DCN', fallback_on_stride=True),
                                 stage_with_dcn=(True, ) * 4))
    assert not any(isinstance(m, DeformConv2dPack) for m in fallback.modules())


def test_make_stage_plugins_is_also_a_resnet_method():
    from detlab.models.backbones import ResNet
    plugins = [dict(cfg=dict(type='SEBlock', ratio=4), stages=(False, True, True, True),
                    position='after_conv2'),
               dict(cfg=dict(type='CBAM'), position='after_conv3')]
    resnet = ResNet(50, base_channels=4)
    assert resnet.make_stage_plugins(plugins, 0) == [
        dict(cfg=dict(type='CBAM'), position='after_conv3')]
    assert [p['cfg']['type'] for p in resnet.make_stage_plugins(plugins, 2)] == ['SEBlock', 'CBAM']
    assert resnet.make_stage_plugins(None, 0) == []
