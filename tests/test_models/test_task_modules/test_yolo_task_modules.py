"""YOLOAnchorGenerator and YOLOBBoxCoder give MMDetection 3.3's anchors and codes (measured
with tools/dev/measure_backbones.py --anchors, which checks them elementwise)."""
import pytest
import torch

from detlab.registry import TASK_UTILS

# yolov3_d53's anchors: levels of stride 32, 16, 8.
YOLO_ANCHORS = dict(type='YOLOAnchorGenerator', strides=[32, 16, 8],
                    base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                [(30, 61), (62, 45), (59, 119)],
                                [(10, 13), (16, 30), (33, 23)]])
FEATMAP_SIZES = [(2, 3), (4, 6), (8, 12)]
# Sums of |coordinates| of MMDetection's grid priors on FEATMAP_SIZES.
MMDET_PRIOR_SUMS = [7668.0, 13874.0, 47008.0]
# Sum and max |value| of MMDetection's encode / decode on the seeded boxes below.
MMDET_ENCODE = (41.8083, 1.5565)
MMDET_DECODE = (1220.0244, 66.3618)


def test_grid_priors_match_mmdetection():
    generator = TASK_UTILS.build(YOLO_ANCHORS)
    assert generator.num_levels == 3 and generator.num_base_priors == [3, 3, 3]
    assert generator.base_anchors[0][0].tolist() == [16 - 58, 16 - 45, 16 + 58, 16 + 45]
    priors = generator.grid_priors(FEATMAP_SIZES, device='cpu')
    assert [tuple(p.shape) for p in priors] == [(18, 4), (72, 4), (288, 4)]
    assert [p.abs().sum().item() for p in priors] == pytest.approx(MMDET_PRIOR_SUMS)


def test_encode_decode_match_mmdetection_and_invert_each_other():
    anchors = TASK_UTILS.build(YOLO_ANCHORS).grid_priors(FEATMAP_SIZES, device='cpu')[2][:20]
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=generator) * 80
    gt = torch.cat([xy, xy + 5 + torch.rand(20, 2, generator=generator) * 40], dim=1)
    stride = torch.full((20, ), 8.)
    coder = TASK_UTILS.build(dict(type='YOLOBBoxCoder'))
    targets = coder.encode(anchors, gt, stride)
    assert (targets.sum().item(), targets.abs().max().item()) == pytest.approx(MMDET_ENCODE,
                                                                               abs=1e-3)
    preds = torch.rand(20, 4, generator=generator)
    decoded = coder.decode(anchors, preds, stride[:, None])
    assert (decoded.sum().item(), decoded.abs().max().item()) == pytest.approx(MMDET_DECODE,
                                                                               abs=1e-3)
    # Boxes whose centres lie within half a stride of their anchor's invert exactly.
    near = anchors + torch.tensor([1., -1., 3., 2.])
    codes = coder.encode(anchors, near, stride)
    assert ((codes[:, :2] > 0) & (codes[:, :2] < 1)).all()
    assert torch.allclose(coder.decode(anchors, codes, stride[:, None]), near, atol=1e-3)

def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match='one list per stride'):
        TASK_UTILS.build(dict(type='YOLOAnchorGenerator', strides=[32, 16],
                              base_sizes=[[(1, 2)], [(1, 2), (3, 4)]]))
    coder = TASK_UTILS.build(dict(type='YOLOBBoxCoder'))
    with pytest.raises(ValueError, match=r'\(3, 4\) and \(2, 4\)'):
        coder.encode(torch.rand(3, 4), torch.rand(2, 4), 8)
