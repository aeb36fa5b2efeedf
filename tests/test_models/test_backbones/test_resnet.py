import pytest
import torch
import torchvision
from torch.nn.modules.batchnorm import _BatchNorm

from detlab.models.backbones import BasicBlock, Bottleneck, ResNet, ResNetV1d
from detlab.registry import MODELS

IMAGE_SIZE = 64


def _torchvision_keys(arch) -> dict:
    return {k: tuple(v.shape) for k, v in arch(weights=None).state_dict().items()
            if not k.startswith('fc.')}


def _shapes(module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def test_resnet50_state_dict_equals_torchvision_without_fc():
    assert _shapes(ResNet(depth=50)) == _torchvision_keys(torchvision.models.resnet50)


def test_resnet18_state_dict_equals_torchvision_without_fc():
    assert _shapes(ResNet(depth=18)) == _torchvision_keys(torchvision.models.resnet18)


def test_resnet18_with_torchvision_weights_computes_torchvision_features():
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None).eval()
    model = ResNet(depth=18).eval()
    weights = {k: v for k, v in reference.state_dict().items() if not k.startswith('fc.')}
    model.load_state_dict(weights, strict=True)
    x = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    with torch.no_grad():
        feats = model(x)
        y = reference.maxpool(reference.relu(reference.bn1(reference.conv1(x))))
        expected = []
        for layer in (reference.layer1, reference.layer2, reference.layer3, reference.layer4):
            y = layer(y)
            expected.append(y)
    for got, want in zip(feats, expected):
        assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize('depth,block,channels', [
    (18, BasicBlock, (64, 128, 256, 512)),
    (34, BasicBlock, (64, 128, 256, 512)),
    (50, Bottleneck, (256, 512, 1024, 2048)),
])
def test_output_channels_and_strides(depth, block, channels):
    model = ResNet(depth=depth).eval()
    assert model.block is block
    feats = model(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert [tuple(f.shape) for f in feats] == [
        (2, c, IMAGE_SIZE // s, IMAGE_SIZE // s) for c, s in zip(channels, (4, 8, 16, 32))]
    assert model.out_channels == channels
    assert model.feat_dim == channels[-1]


def test_out_indices_select_stages_in_stage_order():
    model = ResNet(depth=18, out_indices=(3, 1)).eval()
    feats = model(torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert [f.shape[1] for f in feats] == [128, 512]
    assert model.out_channels == (128, 512)


def test_half_width_resnet18():
    model = ResNet(depth=18, base_channels=32).eval()
    feats = model(torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert [f.shape[1] for f in feats] == [32, 64, 128, 256]
    assert model.conv1.weight.shape == (32, 3, 7, 7)


def test_fewer_stages_dilation_and_one_channel_input():
    model = ResNet(depth=18, in_channels=1, num_stages=3, strides=(1, 2, 1),
                   dilations=(1, 1, 2), out_indices=(2,)).eval()
    assert not hasattr(model, 'layer4')
    (feat,) = model(torch.rand(1, 1, IMAGE_SIZE, IMAGE_SIZE))
    assert feat.shape == (1, 256, IMAGE_SIZE // 8, IMAGE_SIZE // 8)
    assert model.layer3[0].conv1.dilation == (2, 2)


def test_frozen_stages_freeze_params_and_keep_eval_after_train():
    model = ResNet(depth=18, frozen_stages=1, norm_eval=False)
    model.train()
    frozen = [model.conv1, model.bn1, model.layer1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.bn1.training
    assert all(not m.training for m in model.layer1.modules())
    assert model.layer2[0].bn1.training


def test_frozen_stages_zero_freezes_only_the_stem():
    model = ResNet(depth=18, frozen_stages=0)
    assert not model.conv1.weight.requires_grad
    assert all(p.requires_grad for p in model.layer1.parameters())


def test_norm_eval_keeps_bn_statistics_fixed_in_train_mode():
    model = ResNet(depth=18, norm_eval=True).train()
    assert model.training
    assert all(not m.training for m in model.modules() if isinstance(m, _BatchNorm))
    before = model.layer2[0].bn1.running_mean.clone()
    model(torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert torch.equal(model.layer2[0].bn1.running_mean, before)


def test_norm_eval_false_trains_bn():
    model = ResNet(depth=18, norm_eval=False).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_caffe_style_puts_the_stride_on_the_1x1_conv():
    two_stages = dict(depth=50, num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(1,))
    caffe = ResNet(style='caffe', **two_stages).layer2[0]
    pytorch = ResNet(style='pytorch', **two_stages).layer2[0]
    assert (caffe.conv1.stride, caffe.conv2.stride) == ((2, 2), (1, 1))
    assert (pytorch.conv1.stride, pytorch.conv2.stride) == ((1, 1), (2, 2))


def test_default_init_zeroes_last_norm_of_each_block():
    model = ResNet(depth=18)
    model.init_weights()
    block = model.layer2[1]
    assert torch.all(block.bn2.weight == 0)
    assert torch.all(block.bn1.weight == 1) and torch.all(block.bn1.bias == 0)
    assert block.conv1.weight.std() > 0
    unzeroed = ResNet(depth=18, zero_init_residual=False)
    unzeroed.init_weights()
    assert torch.all(unzeroed.layer2[1].bn2.weight == 1)


def test_deep_stem_and_avg_down_keys():
    model = ResNetV1d(depth=50, num_stages=2, strides=(1, 2), dilations=(1, 1),
                      out_indices=(0,)).eval()
    keys = model.state_dict()
    assert 'conv1.weight' not in keys
    assert keys['stem.0.weight'].shape == (32, 3, 3, 3)
    assert keys['stem.6.weight'].shape == (64, 32, 3, 3)
    # The pool sits at downsample.0 even at stride 1, as in MMDetection.
    assert keys['layer1.0.downsample.1.weight'].shape == (256, 64, 1, 1)
    assert keys['layer2.0.downsample.1.weight'].shape == (512, 256, 1, 1)
    (feat,) = model(torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert feat.shape == (1, 256, IMAGE_SIZE // 4, IMAGE_SIZE // 4)


def test_with_cp_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = ResNet(depth=18, num_stages=2, strides=(1, 2), dilations=(1, 1), out_indices=(1,))
    checkpointed = ResNet(depth=18, num_stages=2, strides=(1, 2), dilations=(1, 1),
                          out_indices=(1,), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.rand(1, 3, 32, 32)
    plain(x)[0].sum().backward()
    checkpointed(x.clone().requires_grad_())[0].sum().backward()
    assert torch.allclose(plain.conv1.weight.grad, checkpointed.conv1.weight.grad, atol=1e-5)


def test_unknown_depth_names_valid_depths():
    with pytest.raises(KeyError, match=r'\[18, 34, 50, 101, 152\]'):
        ResNet(depth=42)


@pytest.mark.parametrize('kwargs,match', [
    (dict(out_indices=(4,)), 'out_indices'),
    (dict(out_indices=()), 'out_indices'),
    (dict(frozen_stages=5), 'frozen_stages'),
    (dict(strides=(1, 2)), 'strides'),
    (dict(num_stages=5), 'num_stages'),
    (dict(style='tf'), 'style'),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResNet(depth=18, **kwargs)


def test_deprecated_pretrained_becomes_init_cfg():
    with pytest.warns(DeprecationWarning):
        model = ResNet(depth=18, pretrained='/weights/r18.pth')
    assert model.init_cfg == dict(type='Pretrained', checkpoint='/weights/r18.pth')
    with pytest.raises(ValueError, match='not both'):
        ResNet(depth=18, pretrained='a.pth', init_cfg=dict(type='Pretrained', checkpoint='b'))


def test_built_from_config():
    model = MODELS.build(dict(type='ResNet', depth=18, out_indices=(1, 2, 3)))
    assert isinstance(model, ResNet) and model.out_indices == (1, 2, 3)
