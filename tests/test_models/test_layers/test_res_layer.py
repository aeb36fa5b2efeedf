import pytest
import torch
from torch import nn

from detlab.models.backbones import BasicBlock, Bottleneck
from detlab.models.layers import ResLayer


def test_no_downsample_when_shape_is_kept():
    layer = ResLayer(BasicBlock, inplanes=8, planes=8, num_blocks=2)
    assert len(layer) == 2 and layer[0].downsample is None
    x = torch.rand(1, 8, 6, 6)
    assert layer(x).shape == x.shape


def test_first_block_projects_and_strides():
    layer = ResLayer(Bottleneck, inplanes=8, planes=4, num_blocks=2, stride=2)
    keys = layer.state_dict()
    assert keys['0.downsample.0.weight'].shape == (16, 8, 1, 1)
    assert keys['0.downsample.1.weight'].shape == (16,)
    assert layer[1].downsample is None
    assert layer(torch.rand(1, 8, 8, 8)).shape == (1, 16, 4, 4)


def test_avg_down_pools_before_a_stride_one_conv():
    layer = ResLayer(Bottleneck, inplanes=8, planes=4, num_blocks=1, stride=2, avg_down=True)
    pool, conv = layer[0].downsample[0], layer[0].downsample[1]
    assert isinstance(pool, nn.AvgPool2d) and conv.stride == (1, 1)
    # ceil_mode keeps odd sizes aligned with the strided 3x3 conv.
    assert layer(torch.rand(1, 8, 7, 7)).shape == (1, 16, 4, 4)


def test_zero_blocks_is_rejected():
    with pytest.raises(ValueError, match='num_blocks'):
        ResLayer(BasicBlock, inplanes=8, planes=8, num_blocks=0)


def test_downsample_last_keeps_the_input_width_until_the_last_block():
    # MMDetection's downsample_first=False (Hourglass): blocks 0..n-2 keep inplanes, the last
    # one changes stride and width and carries the projection shortcut.
    layer = ResLayer(BasicBlock, inplanes=8, planes=16, num_blocks=3, stride=2,
                     downsample_first=False)
    assert [block.conv1.in_channels for block in layer] == [8, 8, 8]
    assert [block.conv2.out_channels for block in layer] == [8, 8, 16]
    assert layer[0].downsample is None and layer[1].downsample is None
    assert layer[2].downsample[0].stride == (2, 2) and layer[2].conv1.stride == (2, 2)
    assert layer(torch.rand(1, 8, 8, 8)).shape == (1, 16, 4, 4)
