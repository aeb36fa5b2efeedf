import numpy as np
import pytest
import torch

from detlab.structures import (bbox2roi, bbox_cxcywh_to_xyxy, bbox_flip, bbox_xyxy_to_cxcywh,
                               scale_boxes)
from detlab.structures.bbox import bbox_project


def test_xyxy_cxcywh_round_trip():
    boxes = torch.tensor([[0., 2., 10., 6.], [3., 3., 4., 9.]])
    cxcywh = bbox_xyxy_to_cxcywh(boxes)
    assert torch.equal(cxcywh[0], torch.tensor([5., 4., 10., 4.]))
    assert torch.allclose(bbox_cxcywh_to_xyxy(cxcywh), boxes)


def test_bbox_flip_directions():
    boxes = torch.tensor([[1., 2., 4., 8.]])
    img_shape = (20, 10)  # h, w
    assert torch.equal(bbox_flip(boxes, img_shape, 'horizontal'), torch.tensor([[6., 2., 9., 8.]]))
    assert torch.equal(bbox_flip(boxes, img_shape, 'vertical'), torch.tensor([[1., 12., 4., 18.]]))
    assert torch.equal(bbox_flip(boxes, img_shape, 'diagonal'), torch.tensor([[6., 12., 9., 18.]]))
    # Flipping twice gives the boxes back, and the input is not modified.
    assert torch.equal(bbox_flip(bbox_flip(boxes, img_shape), img_shape), boxes)


def test_bbox_flip_rejects_unknown_direction():
    with pytest.raises(ValueError, match='direction'):
        bbox_flip(torch.zeros(1, 4), (10, 10), 'sideways')


def test_scale_boxes_uses_w_h_order():
    boxes = torch.tensor([[1., 1., 2., 3.]])
    assert torch.equal(scale_boxes(boxes, (2., 10.)), torch.tensor([[2., 10., 4., 30.]]))
    with pytest.raises(ValueError, match='scale_factor'):
        scale_boxes(boxes, (1., 2., 3.))


def test_bbox2roi_prepends_image_index():
    rois = bbox2roi([torch.ones(2, 4), torch.zeros(0, 4), torch.full((1, 5), 2.)])
    assert rois.shape == (3, 5)
    assert rois[:, 0].tolist() == [0., 0., 2.]
    assert torch.equal(rois[2, 1:], torch.full((4, ), 2.))


def test_bbox_project_maps_corners_and_keeps_the_input_kind():
    # Rotate by 90 degrees about the origin, then shift right by 100: (x, y) -> (100 - y, x).
    matrix = np.array([[0, -1, 100], [1, 0, 0], [0, 0, 1]], dtype=np.float32)
    boxes = np.array([[10, 20, 30, 60]], dtype=np.float32)
    projected = bbox_project(boxes, matrix)
    assert isinstance(projected, np.ndarray) and projected.tolist() == [[40, 10, 80, 30]]
    assert boxes.tolist() == [[10, 20, 30, 60]]  # the input is left alone
    clipped = bbox_project(torch.from_numpy(boxes), torch.from_numpy(matrix), img_shape=(20, 50))
    assert isinstance(clipped, torch.Tensor) and clipped.tolist() == [[40, 10, 50, 20]]
    # A scale in the homogeneous coordinate divides: w' = 2 halves every coordinate.
    halving = np.diag([1, 1, 2]).astype(np.float32)
    assert bbox_project(boxes, halving).tolist() == [[5, 10, 15, 30]]
