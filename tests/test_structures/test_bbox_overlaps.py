import pytest
import torch
from torchvision.ops import box_iou, generalized_box_iou

from detlab.structures.bbox import bbox_overlaps


def _random_boxes(num: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(num, 2, generator=gen) * 50
    wh = torch.rand(num, 2, generator=gen) * 30 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_iou_matches_torchvision():
    boxes1, boxes2 = _random_boxes(6, 0), _random_boxes(5, 1)
    assert torch.allclose(bbox_overlaps(boxes1, boxes2), box_iou(boxes1, boxes2), atol=1e-6)


def test_giou_matches_torchvision():
    boxes1, boxes2 = _random_boxes(6, 2), _random_boxes(5, 3)
    giou = bbox_overlaps(boxes1, boxes2, mode='giou')
    assert torch.allclose(giou, generalized_box_iou(boxes1, boxes2), atol=1e-6)
    assert (giou >= -1).all() and (giou <= 1).all()


def test_hand_computed_iou_iof_giou():
    # Box a is 10 x 10; b is 10 x 10 shifted by 5 in x: overlap 5 x 10 = 50.
    a = torch.tensor([[0., 0., 10., 10.]])
    b = torch.tensor([[5., 0., 15., 10.], [20., 20., 30., 30.]])
    assert torch.allclose(bbox_overlaps(a, b), torch.tensor([[50 / 150, 0.]]))
    # IoF divides by the area of the first argument only.
    assert torch.allclose(bbox_overlaps(a, b, mode='iof'), torch.tensor([[0.5, 0.]]))
    small = torch.tensor([[2., 2., 4., 4.]])
    assert torch.allclose(bbox_overlaps(small, a, mode='iof'), torch.tensor([[1.]]))
    # Disjoint: enclosing box 30 x 30 = 900, union 200 -> giou = 0 - 700 / 900.
    giou = bbox_overlaps(a, b, mode='giou')
    assert torch.allclose(giou, torch.tensor([[50 / 150, -700 / 900]]))


def test_aligned_mode_compares_by_index():
    boxes1, boxes2 = _random_boxes(4, 4), _random_boxes(4, 5)
    for mode in ('iou', 'iof', 'giou'):
        aligned = bbox_overlaps(boxes1, boxes2, mode=mode, is_aligned=True)
        assert aligned.shape == (4, )
        assert torch.allclose(aligned, bbox_overlaps(boxes1, boxes2, mode=mode).diagonal())


def test_batched_boxes():
    boxes1 = torch.stack([_random_boxes(3, 6), _random_boxes(3, 7)])
    boxes2 = torch.stack([_random_boxes(2, 8), _random_boxes(2, 9)])
    out = bbox_overlaps(boxes1, boxes2)
    assert out.shape == (2, 3, 2)
    assert torch.allclose(out[1], box_iou(boxes1[1], boxes2[1]), atol=1e-6)


def test_empty_inputs_give_empty_outputs():
    boxes = _random_boxes(3, 10)
    empty = torch.zeros(0, 4)
    assert bbox_overlaps(empty, boxes).shape == (0, 3)
    assert bbox_overlaps(boxes, empty).shape == (3, 0)
    assert bbox_overlaps(empty, empty, is_aligned=True).shape == (0, )


def test_degenerate_boxes_give_zero_not_nan():
    point = torch.tensor([[5., 5., 5., 5.]])
    assert bbox_overlaps(point, point).item() == 0


def test_bad_arguments_raise_clear_errors():
    boxes = _random_boxes(2, 11)
    with pytest.raises(ValueError, match='mode'):
        bbox_overlaps(boxes, boxes, mode='dice')
    with pytest.raises(ValueError, match='is_aligned'):
        bbox_overlaps(boxes, boxes[:1], is_aligned=True)
    with pytest.raises(ValueError, match=r'\(\.\.\., N, 4\)'):
        bbox_overlaps(torch.zeros(2, 3), boxes)
