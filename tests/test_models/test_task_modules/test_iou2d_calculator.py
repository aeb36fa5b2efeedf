import pytest
import torch
from torchvision.ops import box_iou

from detlab.registry import TASK_UTILS


def test_score_column_is_ignored_and_modes_pass_through():
    calc = TASK_UTILS.build(dict(type='BboxOverlaps2D'))
    boxes = torch.tensor([[0., 0., 10., 10., 0.9], [5., 5., 15., 15., 0.1]])
    others = torch.tensor([[0., 0., 10., 20.]])
    assert torch.allclose(calc(boxes, others), box_iou(boxes[:, :4], others))
    assert torch.allclose(calc(boxes, others, mode='iof'), torch.tensor([[1.], [0.5]]))
    assert calc(boxes, boxes, is_aligned=True).tolist() == [1., 1.]
    assert calc(boxes, torch.zeros(0, 4)).shape == (2, 0)


def test_fp16_gives_float32_on_cpu():
    calc = TASK_UTILS.build(dict(type='BboxOverlaps2D', scale=8., dtype='fp16'))
    boxes = torch.tensor([[0., 0., 80., 80.], [40., 0., 120., 80.]])
    out = calc(boxes, boxes)
    assert out.dtype == torch.float32
    assert torch.allclose(out, box_iou(boxes, boxes), atol=1e-3)


def test_bad_box_width_raises():
    calc = TASK_UTILS.build(dict(type='BboxOverlaps2D'))
    with pytest.raises(ValueError, match=r'\(N, 4\) or \(N, 5\)'):
        calc(torch.zeros(2, 3), torch.zeros(2, 4))
