"""SSDAnchorGenerator gives MMDetection 3.3's SSD anchors (measured with
tools/dev/measure_backbones.py --anchors, which checks them elementwise)."""
import math

import pytest
import torch

from detlab.models.task_modules.prior_generators import SSDAnchorGenerator
from detlab.registry import TASK_UTILS

SSD300_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
SSD512_RATIOS = [[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]
# (config, MMDetection's base sizes, sums of |base anchor coordinates| per level)
MMDET_ANCHORS = {
    'ssd300_coco': (
        dict(scale_major=False, input_size=300, basesize_ratio_range=(0.15, 0.9),
             strides=[8, 16, 32, 64, 100, 300], ratios=SSD300_RATIOS),
        [21, 45, 99, 153, 207, 261],
        [192.5771, 622.2565, 1321.4292, 2017.7275, 1757.1007, 2538.2195]),
    'ssd300_voc': (
        dict(scale_major=False, input_size=300, basesize_ratio_range=(0.2, 0.9),
             strides=[8, 16, 32, 64, 100, 300], ratios=SSD300_RATIOS),
        [30, 60, 111, 162, 213, 264],
        [272.132, 814.9042, 1473.8141, 2131.0693, 1803.9482, 2546.7048]),
    'ssd512_coco': (
        dict(scale_major=False, input_size=512, basesize_ratio_range=(0.1, 0.9),
             strides=[8, 16, 32, 64, 128, 256, 512], ratios=SSD512_RATIOS),
        [20, 51, 133, 215, 296, 378, 460],
        [188.7277, 718.6516, 1782.7729, 2839.7495, 3883.9805, 3193.6968, 4373.0762]),
    'ssdlite_min_max_sizes': (
        dict(scale_major=False, strides=[16, 32, 64, 107, 160, 320], ratios=[[2, 3]] * 6,
             min_sizes=[48, 100, 150, 202, 253, 304], max_sizes=[100, 150, 202, 253, 304, 320]),
        [48, 100, 150, 202, 253, 304],
        [659.9133, 1331.0933, 1977.3544, 2646.1443, 3330.4658, 4472.9287]),
    'ssd512_voc_scale_major': (
        dict(scale_major=True, input_size=512, basesize_ratio_range=(0.15, 0.9),
             strides=[8, 16, 32, 64, 128, 256, 512], ratios=SSD512_RATIOS),
        [35, 76, 153, 230, 307, 384, 460],
        [356.8041, 1147.6046, 2126.1807, 3094.6357, 4059.8901, 3314.7188, 4425.418]),
}


@pytest.mark.parametrize('case', sorted(MMDET_ANCHORS))
def test_base_anchors_match_mmdetection(case):
    cfg, base_sizes, sums = MMDET_ANCHORS[case]
    generator = TASK_UTILS.build(dict(type='SSDAnchorGenerator', **cfg))
    assert generator.base_sizes == base_sizes
    assert generator.num_base_priors == [2 + 2 * len(r) for r in cfg['ratios']]
    got = [anchors.abs().sum().item() for anchors in generator.base_anchors]
    assert got == pytest.approx(sums, abs=1e-3)


def test_ssd300_first_level_by_hand():
    generator = SSDAnchorGenerator(strides=[8, 16, 32, 64, 100, 300], ratios=SSD300_RATIOS,
                                   scale_major=False)
    big = math.sqrt(21 * 45)
    wide, tall = 21 * math.sqrt(2), 21 / math.sqrt(2)
    expected = torch.tensor([[4 - 10.5, 4 - 10.5, 4 + 10.5, 4 + 10.5],
                             [4 - big / 2, 4 - big / 2, 4 + big / 2, 4 + big / 2],
                             [4 - wide / 2, 4 - tall / 2, 4 + wide / 2, 4 + tall / 2],
                             [4 - tall / 2, 4 - wide / 2, 4 + tall / 2, 4 + wide / 2]])
    assert torch.allclose(generator.base_anchors[0], expected, atol=1e-4)
    priors = generator.grid_priors([(2, 3)] * 6, device='cpu')
    assert priors[0].shape == (2 * 3 * 4, 4)
    assert torch.allclose(priors[0][4], expected[0] + torch.tensor([8., 0, 8, 0]))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='input_size=400'):
        SSDAnchorGenerator(strides=[8] * 6, ratios=SSD300_RATIOS, input_size=400)
    with pytest.raises(ValueError, match='both min_sizes and max_sizes'):
        SSDAnchorGenerator(strides=[8] * 6, ratios=SSD300_RATIOS, min_sizes=[1] * 6)
    with pytest.raises(ValueError, match='one ratios list per stride'):
        SSDAnchorGenerator(strides=[8] * 5, ratios=SSD300_RATIOS)
