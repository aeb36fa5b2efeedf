"""detlab's backbones compute MMDetection 3.3's outputs for the same weights and input."""
import pytest
import torch

from helpers import fill_seeded_weights
from detlab.registry import MODELS

SEED = 0
IMAGE_SIZE = 64
# MMDetection 3.3's outputs (shape, sum, mean |x|) for these configs, with weights from
# fill_seeded_weights(SEED) and the seeded (1, 3, 64, 64) input below, measured by
# tools/dev/measure_backbones.py, which also loads MMDetection's state_dict into detlab's
# backbone strictly and checks the outputs elementwise.
MMDET_OUTPUTS = {
    'resnext50_32x4d': (
        dict(type='ResNeXt', depth=50, groups=32, base_width=4),
        [((1, 256, 16, 16), 150582.906, 2.297713), ((1, 512, 8, 8), 396656.219, 12.104987),
         ((1, 1024, 4, 4), 2494998.25, 152.282608), ((1, 2048, 2, 2), 3422943.75, 417.839813)]),
    'resnext101_64x4d_caffe': (
        dict(type='ResNeXt', depth=101, groups=64, base_width=4, style='caffe',
             out_indices=(1, 3)),
        [((1, 512, 8, 8), 419718.656, 12.808797), ((1, 2048, 2, 2), 6282784256.0, 766941.4375)]),
    'regnetx_400mf': (
        dict(type='RegNet', arch='regnetx_400mf'),
        [((1, 32, 16, 16), 3667.21, 0.447657), ((1, 64, 8, 8), 5120.793, 1.250194),
         ((1, 160, 4, 4), 64306.73, 25.119816), ((1, 384, 2, 2), 1608988.375, 1047.518433)]),
    'regnetx_3.2gf': (
        dict(type='RegNet', arch='regnetx_3.2gf', out_indices=(0, 2)),
        [((1, 96, 16, 16), 29431.352, 1.197565), ((1, 432, 4, 4), 106641936.0, 15428.520508)]),
    'regnetx_12gf': (
        dict(type='RegNet', arch='regnetx_12gf', frozen_stages=1),
        [((1, 224, 16, 16), 48745.055, 0.850046), ((1, 448, 8, 8), 262803.688, 9.165865),
         ((1, 896, 4, 4), 13264375.0, 925.24939), ((1, 2240, 2, 2), 10187421.0, 1136.988892)]),
    'regnet_dict_arch_bot_mul': (
        dict(type='RegNet', arch=dict(w0=24, wa=36.44, wm=2.49, group_w=8, depth=13,
                                      bot_mul=0.5)),
        [((1, 32, 16, 16), 3494.055, 0.42652), ((1, 64, 8, 8), 2908.391, 0.710056),
         ((1, 160, 4, 4), 13098.884, 5.116752), ((1, 368, 2, 2), 62042.609, 42.14851)]),
    'regnet_dict_arch_3_stages': (
        dict(type='RegNet', arch=dict(w0=48, wa=20.0, wm=2.3, group_w=24, depth=12, bot_mul=1.0),
             strides=(2, 2, 2), dilations=(1, 1, 1), out_indices=(0, 1, 2)),
        [((1, 48, 16, 16), 13686.725, 1.113829), ((1, 120, 8, 8), 68953.852, 8.978366),
         ((1, 264, 4, 4), 655498.875, 155.184387)]),
    # Deformable stages: the seeded conv_offset weights give non-zero offsets (and masks).
    'resnet50_dcn_c3_c5': (
        dict(type='ResNet', depth=50, dcn=dict(type='DCN', deform_groups=1,
                                               fallback_on_stride=False),
             stage_with_dcn=(False, True, True, True)),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 132323.906, 4.038205),
         ((1, 1024, 4, 4), 76920.094, 4.69483), ((1, 2048, 2, 2), 40174.078, 4.904062)]),
    'resnet50_dcnv2_group4_c3_c5': (
        dict(type='ResNet', depth=50, dcn=dict(type='DCNv2', deform_groups=4,
                                               fallback_on_stride=False),
             stage_with_dcn=(False, True, True, True)),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 87180.547, 2.660539),
         ((1, 1024, 4, 4), 52621.18, 3.211742), ((1, 2048, 2, 2), 25627.766, 3.128389)]),
    'resnext50_32x4d_dcn_c5': (
        dict(type='ResNeXt', depth=50, groups=32, base_width=4,
             dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
             stage_with_dcn=(False, False, False, True)),
        [((1, 256, 16, 16), 150582.906, 2.297713), ((1, 512, 8, 8), 396656.219, 12.104987),
         ((1, 1024, 4, 4), 2494998.25, 152.282608), ((1, 2048, 2, 2), 1018331.125, 124.307999)]),
    'regnetx_400mf_dcnv2_c3_c5': (
        dict(type='RegNet', arch='regnetx_400mf',
             dcn=dict(type='DCNv2', deform_groups=1, fallback_on_stride=False),
             stage_with_dcn=(False, True, True, True)),
        [((1, 32, 16, 16), 3667.21, 0.447657), ((1, 64, 8, 8), 2207.704, 0.53899),
         ((1, 160, 4, 4), 3379.725, 1.320205), ((1, 384, 2, 2), 3257.954, 2.121063)]),
    'mobilenetv2': (
        dict(type='MobileNetV2'),
        [((1, 24, 16, 16), 2991.357, 2.342374), ((1, 32, 8, 8), 2190.301, 3.954084),
         ((1, 96, 4, 4), 655.875, 3.824315), ((1, 1280, 2, 2), 7763.651, 1.516338)]),
    'mobilenetv2_w0.75_all_outputs': (
        dict(type='MobileNetV2', widen_factor=0.75, out_indices=tuple(range(8))),
        [((1, 16, 32, 32), -5491.099, 0.628926), ((1, 24, 16, 16), -473.095, 1.090906),
         ((1, 24, 8, 8), -945.956, 3.629433), ((1, 48, 4, 4), -682.834, 3.871728),
         ((1, 72, 4, 4), -525.124, 3.90168), ((1, 120, 2, 2), -81.314, 3.596843),
         ((1, 240, 2, 2), 179.579, 2.094933), ((1, 1280, 2, 2), 7440.73, 1.453268)]),
    'mobilenetv2_w1.5': (
        dict(type='MobileNetV2', widen_factor=1.5, out_indices=(2, 7)),
        [((1, 48, 8, 8), 353.636, 4.07759), ((1, 1920, 2, 2), 11784.285, 1.534412)]),
    'darknet53': (
        dict(type='Darknet', depth=53),
        [((1, 256, 8, 8), 1786237.0, 111.492424), ((1, 512, 4, 4), 53411940.0, 6631.09375),
         ((1, 1024, 2, 2), 109980824.0, 27608.435547)]),
    'darknet53_all_outputs': (
        dict(type='Darknet', depth=53, out_indices=(0, 1, 2, 3, 4, 5)),
        [((1, 32, 64, 64), 48286.742, 0.421571), ((1, 64, 32, 32), 36212.523, 0.637949),
         ((1, 128, 16, 16), 55400.227, 1.817884), ((1, 256, 8, 8), 1786237.0, 111.492424),
         ((1, 512, 4, 4), 53411940.0, 6631.09375), ((1, 1024, 2, 2), 109980824.0, 27608.435547)]),
    'ssdvgg16': (
        dict(type='SSDVGG', depth=16),
        [((1, 512, 8, 8), 18779.396, 0.573102), ((1, 1024, 4, 4), 4757.348, 0.290365)]),
    'ssdvgg11_one_output': (
        dict(type='SSDVGG', depth=11, out_feature_indices=(24, )),
        [((1, 1024, 4, 4), 4057.914, 0.247675)]),
}
# Backbone and neck pairs (ssd300's and yolov3_d53's), the image size, and MMDetection's
# outputs, as above (the keys carry the prefixes '0.' and '1.' of a Sequential in both).
MMDET_NECK_OUTPUTS = {
    'ssd300_vgg16_neck': (
        (dict(type='SSDVGG', depth=16, with_last_pool=False, ceil_mode=True, out_indices=(3, 4),
              out_feature_indices=(22, 34)),
         dict(type='SSDNeck', in_channels=(512, 1024),
              out_channels=(512, 1024, 512, 256, 256, 256), level_strides=(2, 2, 1, 1),
              level_paddings=(1, 1, 0, 0), l2_norm_scale=20)),
        300,
        [((1, 512, 38, 38), 18565.309, 0.025111), ((1, 1024, 19, 19), 263894.312, 0.713876),
         ((1, 512, 10, 10), 33101.32, 0.64651), ((1, 256, 5, 5), 4543.677, 0.709949),
         ((1, 256, 3, 3), 1480.139, 0.642421), ((1, 256, 1, 1), 156.974, 0.613181)]),
    'yolov3_darknet53_neck': (
        (dict(type='Darknet', depth=53, out_indices=(3, 4, 5)),
         dict(type='YOLOV3Neck', num_scales=3, in_channels=[1024, 512, 256],
              out_channels=[512, 256, 128])),
        96,
        [((1, 512, 3, 3), 147696512.0, 39128.339844), ((1, 256, 6, 6), 245867232.0, 31855.722656),
         ((1, 128, 12, 12), 353234464.0, 23109.460938)]),
}

def _check(outputs, expected):
    outputs = (outputs, ) if isinstance(outputs, torch.Tensor) else outputs
    assert len(outputs) == len(expected)
    for out, (shape, total, mean_abs) in zip(outputs, expected):
        assert tuple(out.shape) == shape
        assert out.sum().item() == pytest.approx(total, rel=1e-4)
        assert out.abs().mean().item() == pytest.approx(mean_abs, rel=1e-4)


def _seeded_input(size=IMAGE_SIZE):
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))


@pytest.mark.parametrize('case', sorted(MMDET_OUTPUTS))
def test_outputs_match_mmdetection_for_the_same_weights(case):
    cfg, expected = MMDET_OUTPUTS[case]
    model = MODELS.build(cfg).eval()
    fill_seeded_weights(model, SEED)
    with torch.no_grad():
        _check(model(_seeded_input()), expected)


@pytest.mark.parametrize('case', sorted(MMDET_NECK_OUTPUTS))
def test_backbone_and_neck_match_mmdetection(case):
    cfgs, image_size, expected = MMDET_NECK_OUTPUTS[case]
    model = torch.nn.Sequential(*[MODELS.build(cfg) for cfg in cfgs]).eval()
    fill_seeded_weights(model, SEED)
    with torch.no_grad():
        _check(model(_seeded_input(image_size)), expected)
