"""ResNeXt: MMDetection's widths and grouped convs (outputs: test_mmdet_backbone_outputs.py)."""
import pytest
import torch

from detlab.models.backbones import ResNeXt

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
