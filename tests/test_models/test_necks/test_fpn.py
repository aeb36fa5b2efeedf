import pytest
import torch
import torch.nn.functional as F

from detlab.models.necks import FPN
from detlab.registry import MODELS

RETINANET_IN = [256, 512, 1024, 2048]
SMALL_IN = [4, 8, 16, 32]
SIZES = [32, 16, 8, 4]


def _feats(channels=SMALL_IN, sizes=SIZES):
    return [torch.rand(1, c, s, s) for c, s in zip(channels, sizes)]


def _weight_shapes(neck) -> dict:
    return {k: tuple(v.shape) for k, v in neck.state_dict().items()}


def test_retinanet_config_keys_and_shapes():
    neck = FPN(RETINANET_IN, 256, num_outs=5, start_level=1, add_extra_convs='on_input')
    shapes = _weight_shapes(neck)
    expected = {}
    for i, cin in enumerate(RETINANET_IN[1:]):
        expected[f'lateral_convs.{i}.conv.weight'] = (256, cin, 1, 1)
        expected[f'lateral_convs.{i}.conv.bias'] = (256,)
    for i in range(3):
        expected[f'fpn_convs.{i}.conv.weight'] = (256, 256, 3, 3)
        expected[f'fpn_convs.{i}.conv.bias'] = (256,)
    expected['fpn_convs.3.conv.weight'] = (256, 2048, 3, 3)
    expected['fpn_convs.3.conv.bias'] = (256,)
    expected['fpn_convs.4.conv.weight'] = (256, 256, 3, 3)
    expected['fpn_convs.4.conv.bias'] = (256,)
    assert shapes == expected


def test_retinanet_config_output_count_and_shapes():
    neck = FPN([8, 16, 32, 64], 16, num_outs=5, start_level=1, add_extra_convs='on_input')
    outs = neck(_feats([8, 16, 32, 64]))
    assert [tuple(o.shape) for o in outs] == [(1, 16, s, s) for s in (16, 8, 4, 2, 1)]


def test_extra_conv_on_input_reads_the_backbone_feature():
    neck = FPN(SMALL_IN, 8, num_outs=5, add_extra_convs=True)
    assert neck.add_extra_convs == 'on_input'
    feats = _feats()
    outs = neck(feats)
    assert torch.allclose(outs[4], neck.fpn_convs[4](feats[3]))


def test_on_output_variant():
    neck = FPN(SMALL_IN, 8, num_outs=6, add_extra_convs='on_output',
               relu_before_extra_convs=True)
    assert neck.fpn_convs[4].conv.weight.shape == (8, 8, 3, 3)
    assert len(neck.fpn_convs) == 6
    outs = neck(_feats())
    assert [o.shape[-1] for o in outs] == [32, 16, 8, 4, 2, 1]
    assert torch.allclose(outs[4], neck.fpn_convs[4](outs[3]))
    # Later extra convs see a ReLU'd input.
    assert torch.allclose(outs[5], neck.fpn_convs[5](F.relu(outs[4])))


def test_on_lateral_variant_reads_the_top_lateral():
    neck = FPN(SMALL_IN, 8, num_outs=5, add_extra_convs='on_lateral')
    feats = _feats()
    outs = neck(feats)
    assert torch.allclose(outs[4], neck.fpn_convs[4](neck.lateral_convs[3](feats[3])))


def test_no_extra_convs_max_pools_the_top_output():
    neck = FPN(SMALL_IN, 8, num_outs=6)
    assert len(neck.fpn_convs) == 4
    outs = neck(_feats())
    assert torch.equal(outs[4], outs[3][..., ::2, ::2])
    assert torch.equal(outs[5], outs[4][..., ::2, ::2])


def test_top_down_pathway_adds_upsampled_coarser_level():
    neck = FPN([4, 8], 8, num_outs=2)
    feats = _feats([4, 8], [8, 4])
    outs = neck(feats)
    top = neck.lateral_convs[1](feats[1])
    merged = neck.lateral_convs[0](feats[0]) + F.interpolate(top, size=(8, 8), mode='nearest')
    assert torch.allclose(outs[1], neck.fpn_convs[1](top))
    assert torch.allclose(outs[0], neck.fpn_convs[0](merged))


def test_odd_sizes_and_scale_factor_upsampling():
    neck = FPN(SMALL_IN, 8, num_outs=4)
    outs = neck(_feats(sizes=[33, 17, 9, 5]))
    assert [o.shape[-1] for o in outs] == [33, 17, 9, 5]
    scaled = FPN(SMALL_IN, 8, num_outs=4, upsample_cfg=dict(scale_factor=2, mode='nearest'))
    assert [o.shape[-1] for o in scaled(_feats())] == SIZES


def test_end_level_and_single_level():
    neck = FPN(SMALL_IN, 8, num_outs=2, start_level=1, end_level=2)
    assert len(neck.lateral_convs) == 2
    assert [o.shape[-1] for o in neck(_feats())] == [16, 8]
    single = FPN([4], 8, num_outs=1)
    (out,) = single(_feats([4], [8]))
    assert out.shape == (1, 8, 8, 8)


def test_norm_cfg_and_no_norm_on_lateral():
    neck = FPN(SMALL_IN, 8, num_outs=4, norm_cfg=dict(type='GN', num_groups=2),
               no_norm_on_lateral=True)
    assert neck.lateral_convs[0].norm_cfg is None
    assert 'fpn_convs.0.gn.weight' in neck.state_dict()


def test_init_weights_xavier_zero_bias():
    neck = FPN(SMALL_IN, 8, num_outs=4)
    neck.init_weights()
    assert torch.all(neck.fpn_convs[0].conv.bias == 0)
    assert neck.fpn_convs[0].conv.weight.std() > 0


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(num_outs=5, add_extra_convs='on_top'), ValueError, 'add_extra_convs'),
    (dict(num_outs=3), ValueError, 'num_outs=3'),
    (dict(num_outs=4, start_level=4), ValueError, 'start_level'),
    (dict(num_outs=2, end_level=2), ValueError, 'end_level - start_level'),
    (dict(num_outs=2, end_level=7), ValueError, 'end_level'),
])
def test_bad_arguments_are_named(kwargs, error, match):
    with pytest.raises(error, match=match):
        FPN(SMALL_IN, 8, **kwargs)


def test_in_channels_must_be_a_list():
    with pytest.raises(TypeError, match='in_channels'):
        FPN(256, 8, num_outs=1)


def test_wrong_number_of_inputs():
    neck = FPN(SMALL_IN, 8, num_outs=4)
    with pytest.raises(ValueError, match='got 3 feature maps'):
        neck(_feats()[:3])


def test_built_from_config():
    neck = MODELS.build(dict(type='FPN', in_channels=SMALL_IN, out_channels=8, num_outs=5))
    assert isinstance(neck, FPN) and neck.num_outs == 5
