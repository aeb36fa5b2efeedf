"""ResNeXt: MMDetection's widths, keys and outputs for the same weights."""
import pytest
import torch

from helpers import fill_seeded_weights
from detlab.models.backbones import ResNeXt
from detlab.registry import MODELS

SEED = 0
IMAGE_SIZE = 64
# MMDetection 3.3's outputs (shape, sum, mean |x|) for these configs, weights from
# fill_seeded_weights(SEED) and the seeded input below, measured by
# tools/dev/measure_backbones.py (which also checks detlab's outputs elementwise).
MMDET_OUTPUTS = {
    'resnext50_32x4d': (
        dict(type='ResNeXt', depth=50, groups=32, base_width=4),
        [((1, 256, 16, 16), 150582.906, 2.297713), ((1, 512, 8, 8), 396656.219, 12.104987),
         ((1, 1024, 4, 4), 2494998.25, 152.282608), ((1, 2048, 2, 2), 3422943.75, 417.839813)]),
    'resnext101_64x4d_caffe': (
        dict(type='ResNeXt', depth=101, groups=64, base_width=4, style='caffe',
             out_indices=(1, 3)),
        [((1, 512, 8, 8), 419718.656, 12.808797), ((1, 2048, 2, 2), 6282784256.0, 766941.4375)]),
}


@pytest.mark.parametrize('case', sorted(MMDET_OUTPUTS))
def test_outputs_match_mmdetection_for_the_same_weights(case):
    cfg, expected = MMDET_OUTPUTS[case]
    model = MODELS.build(cfg).eval()
    fill_seeded_weights(model, SEED)
    x = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        outputs = model(x)
    assert len(outputs) == len(expected)
    for out, (shape, total, mean_abs) in zip(outputs, expected):
        assert tuple(out.shape) == shape
        assert out.sum().item() == pytest.approx(total, rel=1e-4)
        assert out.abs().mean().item() == pytest.approx(mean_abs, rel=1e-4)


@pytest.mark.parametrize('groups,base_width,widths', [
    (32, 4, (128, 256, 512, 1024)),
    (64, 4, (256, 512, 1024, 2048)),
    (32, 8, (256, 512, 1024, 2048)),
    (1, 4, (64, 128, 256, 512)),
])
def test_inner_width_and_grouped_conv(groups, base_width, widths):
    model = ResNeXt(depth=50, groups=groups, base_width=base_width)
    for stage, width in enumerate(widths, start=1):
        block = getattr(model, f'layer{stage}')[0]
        assert block.conv1.out_channels == width
        assert block.conv2.groups == groups
        assert tuple(block.conv2.weight.shape) == (width, width // groups, 3, 3)
        assert block.conv3.in_channels == width
        assert block.bn2.num_features == width
    assert model.out_channels == (256, 512, 1024, 2048)


def test_caffe_style_strides_the_first_conv_and_zero_init_hits_bn3():
    model = ResNeXt(depth=50, groups=32, style='caffe')
    block = model.layer2[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    model.init_weights()
    assert torch.count_nonzero(model.layer3[1].bn3.weight) == 0
    assert torch.count_nonzero(model.layer3[1].bn2.weight) > 0


def test_invalid_depth_and_groups_are_named():
    with pytest.raises(KeyError, match='invalid depth 18'):
        ResNeXt(depth=18, groups=32)
    with pytest.raises(ValueError, match='groups must be >= 1, got 0'):
        ResNeXt(depth=50, groups=0)
