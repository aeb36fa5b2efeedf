import math

import pytest
import torch

from detlab.models.task_modules import AnchorGenerator as ExportedAnchorGenerator
from detlab.registry import TASK_UTILS

RETINA_CFG = dict(
    type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
    strides=[8, 16, 32, 64, 128])


def test_retinanet_anchor_counts_and_first_anchor():
    gen = TASK_UTILS.build(RETINA_CFG)
    assert isinstance(gen, ExportedAnchorGenerator)
    assert gen.num_levels == 5
    assert gen.num_base_priors == [9] * 5
    assert gen.strides == [(8, 8), (16, 16), (32, 32), (64, 64), (128, 128)]
    sizes = [(4, 6), (2, 3), (1, 2), (1, 1), (1, 1)]
    anchors = gen.grid_priors(sizes)
    assert [len(a) for a in anchors] == [h * w * 9 for h, w in sizes]
    # First base anchor: ratio 0.5 (h/w), scale 4: w = 32/sqrt(.5), h = 32*sqrt(.5), centred at 0.
    w, h = 32 / math.sqrt(0.5), 32 * math.sqrt(0.5)
    assert torch.allclose(anchors[0][0], torch.tensor([-w / 2, -h / 2, w / 2, h / 2]))
    # scale_major: the second anchor keeps the ratio and takes the next octave scale.
    w2 = 32 * 2**(1 / 3) / math.sqrt(0.5)
    assert math.isclose(anchors[0][1, 2].item() - anchors[0][1, 0].item(), w2, rel_tol=1e-5)


def test_anchor_index_order_and_stride_shift():
    gen = TASK_UTILS.build(RETINA_CFG)
    feat_h, feat_w, num_base = 4, 6, 9
    anchors = gen.grid_priors([(feat_h, feat_w)] + [(1, 1)] * 4)[0]
    # Index (y * w + x) * A + a holds base anchor a shifted by (x * stride, y * stride).
    y, x, a = 2, 3, 5
    expected = gen.base_anchors[0][a] + torch.tensor([x * 8., y * 8., x * 8., y * 8.])
    assert torch.allclose(anchors[(y * feat_w + x) * num_base + a], expected)
    # Neighbouring locations along a row differ by exactly one stride in x.
    grid = anchors.view(feat_h, feat_w, num_base, 4)
    assert torch.allclose(grid[:, 1:] - grid[:, :-1], torch.tensor([8., 0., 8., 0.]).expand(
        feat_h, feat_w - 1, num_base, 4))
    assert torch.allclose(grid[1:] - grid[:-1], torch.tensor([0., 8., 0., 8.]).expand(
        feat_h - 1, feat_w, num_base, 4))


def test_explicit_scales_center_offset_and_rectangular_stride():
    gen = ExportedAnchorGenerator(
        strides=[(16, 8)], ratios=[1.], scales=[1., 2.], center_offset=0.5)
    assert gen.base_sizes == [8]
    anchors = gen.grid_priors([(2, 2)])[0]
    # Centre at 0.5 * base size = 4; sizes 8 and 16; the stride is (w=16, h=8).
    assert torch.equal(anchors[0], torch.tensor([0., 0., 8., 8.]))
    assert torch.equal(anchors[1], torch.tensor([-4., -4., 12., 12.]))
    assert torch.equal(anchors[2], torch.tensor([16., 0., 24., 8.]))  # x = 1
    assert torch.equal(anchors[4], torch.tensor([0., 8., 8., 16.]))  # y = 1


def test_scale_major_false_orders_ratios_fastest():
    gen = ExportedAnchorGenerator(
        strides=[16], ratios=[0.5, 2.], scales=[1., 2.], scale_major=False)
    widths = gen.base_anchors[0][:, 2] - gen.base_anchors[0][:, 0]
    expected = torch.tensor([16 / math.sqrt(.5), 16 / math.sqrt(2.), 32 / math.sqrt(.5),
                             32 / math.sqrt(2.)])
    assert torch.allclose(widths, expected)


def test_sparse_priors_match_grid():
    gen = TASK_UTILS.build(RETINA_CFG)
    grid = gen.single_level_grid_priors((3, 5), level_idx=1)
    idx = torch.tensor([0, 7, 44, 134])
    assert torch.equal(gen.sparse_priors(idx, (3, 5), level_idx=1), grid[idx])


def test_valid_flags_mark_cells_beyond_the_padded_image():
    gen = ExportedAnchorGenerator(strides=[8, 16], ratios=[1., 2.], scales=[1.])
    # Image padded to 20 x 30 on a batch whose feature maps are 4 x 5 and 2 x 3.
    flags = gen.valid_flags([(4, 5), (2, 3)], pad_shape=(20, 30, 3))
    assert [f.dtype for f in flags] == [torch.bool, torch.bool]
    level0 = flags[0].view(4, 5, 2)
    # ceil(20 / 8) = 3 valid rows, ceil(30 / 8) = 4 valid columns.
    assert level0[:3, :4].all() and not level0[3].any() and not level0[:, 4].any()
    # ceil(20 / 16) = 2 rows (all of them), ceil(30 / 16) = 2 of the 3 columns.
    level1 = flags[1].view(2, 3, 2)
    assert level1[:, :2].all() and not level1[:, 2].any()


def test_bad_configs_raise():
    with pytest.raises(ValueError, match='exactly one of'):
        ExportedAnchorGenerator(strides=[8], ratios=[1.], scales=[1.], octave_base_scale=4,
                                scales_per_octave=3)
    with pytest.raises(ValueError, match='center_offset'):
        ExportedAnchorGenerator(strides=[8], ratios=[1.], scales=[1.], center_offset=2)
    gen = ExportedAnchorGenerator(strides=[8], ratios=[1.], scales=[1.])
    with pytest.raises(ValueError, match='feature map sizes'):
        gen.grid_priors([(2, 2), (1, 1)])


def test_grid_anchors_is_mmdetections_name_for_grid_priors():
    gen = TASK_UTILS.build(RETINA_CFG)
    sizes = [(4, 5), (2, 3), (1, 2), (1, 1), (1, 1)]
    for old, new in zip(gen.grid_anchors(sizes), gen.grid_priors(sizes)):
        assert torch.equal(old, new)
    # Rectangular stride (w=10, h=20), as MMDetection's test_strides pins it.
    anchors = ExportedAnchorGenerator([(10, 20)], [1.], [1.], [10]).grid_anchors([(2, 2)])[0]
    assert anchors.tolist() == [[-5, -5, 5, 5], [5, -5, 15, 5], [-5, 15, 5, 25], [5, 15, 15, 25]]


def test_single_level_grid_anchors_tiles_given_base_anchors_in_their_dtype():
    base = torch.tensor([[-1., -2., 1., 2.], [-3., -3., 3., 3.]], dtype=torch.float64)
    anchors = ExportedAnchorGenerator.single_level_grid_anchors(base, (2, 3), stride=(4, 8))
    assert anchors.dtype == torch.float64 and anchors.shape == (2 * 3 * 2, 4)
    # Row y, column x, base anchor a sits at index (y * w + x) * A + a.
    assert anchors[(1 * 3 + 2) * 2 + 1].tolist() == [-3 + 8, -3 + 8, 3 + 8, 3 + 8]


def test_use_box_type_wraps_grid_priors_in_horizontal_boxes():
    from detlab.structures.bbox import HorizontalBoxes
    plain = TASK_UTILS.build(RETINA_CFG)
    boxed = TASK_UTILS.build(dict(RETINA_CFG, use_box_type=True))
    sizes = [(2, 3), (1, 2), (1, 1), (1, 1), (1, 1)]
    for tensor, boxes in zip(plain.grid_priors(sizes), boxed.grid_priors(sizes)):
        assert isinstance(boxes, HorizontalBoxes) and torch.equal(boxes.tensor, tensor)
    # grid_anchors, MMDetection's older name, keeps returning tensors.
    assert all(isinstance(a, torch.Tensor) for a in boxed.grid_anchors(sizes))


def test_base_anchors_are_copied_to_a_device_once_and_follow_reassignment():
    from detlab.models.task_modules.prior_generators import AnchorGenerator
    generator = AnchorGenerator(strides=[8, 16], ratios=[0.5, 1.0], scales=[4])
    # 'meta' stands for a device that is not the host: a copy there is the costly one
    first = generator.base_anchors_on(1, 'meta', torch.float16)
    assert first.device.type == 'meta' and first.dtype == torch.float16
    assert generator.base_anchors_on(1, torch.device('meta'), torch.float16) is first
    assert generator.base_anchors_on(0, 'meta') is not first
    generator.base_anchors = generator.gen_base_anchors()
    assert generator.base_anchors_on(1, 'meta', torch.float16) is not first
    assert torch.equal(generator.base_anchors_on(1, 'cpu', torch.float64),
                       generator.base_anchors[1].double())
    priors = generator.grid_priors([(3, 4), (2, 2)], device='meta')
    assert [tuple(p.shape) for p in priors] == [(24, 4), (8, 4)]
