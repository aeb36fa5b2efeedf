"""FCOS target assignment on hand-made points: which point gets which box."""
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules.assigners import fcos_assign
from detlab.models.utils import pad_gt_instances

NUM_CLASSES = 5
# One level of stride 8: points at x, y in {4, 12, 20, 28}.
POINTS = torch.tensor([[x, y] for y in (4., 12., 20., 28.) for x in (4., 12., 20., 28.)])
STRIDES = torch.full((16,), 8.)
ANY_RANGE = torch.tensor([[-1., 1e8]]).expand(16, 2)


def point_index(x, y):
    return [p.tolist() for p in POINTS].index([x, y])


def assign(gt_bboxes, gt_labels, ranges=ANY_RANGE, **kwargs):
    bboxes, labels, valid = pad_gt_instances(
        [InstanceData(bboxes=b, labels=l) for b, l in zip(gt_bboxes, gt_labels)])
    return fcos_assign(POINTS, STRIDES, ranges, bboxes, labels, valid, NUM_CLASSES, **kwargs)


def test_points_inside_a_box_take_it_and_regress_its_sides():
    box = torch.tensor([[0., 0., 16., 16.]])
    targets = assign([box], [torch.tensor([3])])
    inside = {point_index(4, 4), point_index(12, 4), point_index(4, 12), point_index(12, 12)}
    expected = [3 if i in inside else NUM_CLASSES for i in range(16)]
    assert targets.labels.tolist() == [expected]
    # Point (12, 4): left 12, top 4, right 4, bottom 12.
    assert targets.bbox_targets[0, point_index(12, 4)].tolist() == [12, 4, 4, 12]
    # A point on the box's edge (distance 0) is outside.
    edge = assign([torch.tensor([[4., 4., 20., 20.]])], [torch.tensor([0])])
    assert edge.labels[0, point_index(4, 12)] == NUM_CLASSES
    assert edge.labels[0, point_index(12, 12)] == 0


def test_overlapping_boxes_go_to_the_smaller_one():
    boxes = torch.tensor([[0., 0., 32., 32.], [8., 8., 24., 24.]])
    targets = assign([boxes], [torch.tensor([1, 2])])
    labels = targets.labels[0]
    assert labels[point_index(12, 12)] == 2 and labels[point_index(20, 20)] == 2
    assert labels[point_index(4, 4)] == 1 and labels[point_index(28, 12)] == 1
    assert targets.bbox_targets[0, point_index(12, 12)].tolist() == [4, 4, 12, 12]


def test_regress_range_limits_the_largest_distance():
    box = torch.tensor([[0., 0., 32., 32.]])
    # Point (4, 4) has largest distance 28, point (12, 12) 20, point (20, 20) 20.
    targets = assign([box], [torch.tensor([0])], ranges=torch.tensor([[-1., 24.]]).expand(16, 2))
    labels = targets.labels[0]
    assert labels[point_index(12, 12)] == 0 and labels[point_index(20, 20)] == 0
    assert labels[point_index(4, 4)] == NUM_CLASSES and labels[point_index(28, 28)] == NUM_CLASSES


def test_center_sampling_keeps_points_near_the_centre():
    box = torch.tensor([[0., 0., 32., 32.]])  # centre (16, 16)
    # radius 0.5 stride = 4 px around the centre: only |x - 16| < 4 and |y - 16| < 4: none
    # of the points (all 4 px off-centre at best) pass, 1.5 strides = 12 px: the middle four.
    none = assign([box], [torch.tensor([0])], center_sampling=True, center_sample_radius=0.5)
    assert (none.labels == NUM_CLASSES).all()
    middle = assign([box], [torch.tensor([0])], center_sampling=True, center_sample_radius=1.5)
    positives = (middle.labels[0] == 0).nonzero().flatten().tolist()
    assert positives == sorted(point_index(x, y) for x in (12., 20.) for y in (12., 20.))
    # The centre region is cut to the box: a small box off the centre of the grid.
    small = torch.tensor([[0., 0., 10., 10.]])
    cut = assign([small], [torch.tensor([0])], center_sampling=True, center_sample_radius=10.)
    assert (cut.labels[0] == 0).nonzero().flatten().tolist() == [point_index(4, 4)]


def test_batch_with_padding_and_an_image_without_boxes():
    boxes = [torch.tensor([[0., 0., 16., 16.], [16., 16., 32., 32.]]), torch.zeros(0, 4),
             torch.tensor([[16., 16., 32., 32.]])]
    labels = [torch.tensor([0, 1]), torch.zeros(0, dtype=torch.long), torch.tensor([4])]
    targets = assign(boxes, labels)
    assert targets.labels.shape == (3, 16) and targets.bbox_targets.shape == (3, 16, 4)
    assert (targets.labels[1] == NUM_CLASSES).all()
    assert targets.labels[0, point_index(28, 28)] == 1
    assert targets.labels[2, point_index(28, 28)] == 4
    # The padded slot of image 2 (a zero box) never matches.
    assert targets.labels[2, point_index(4, 4)] == NUM_CLASSES


def test_no_boxes_in_the_whole_batch():
    targets = assign([torch.zeros(0, 4)] * 2, [torch.zeros(0, dtype=torch.long)] * 2)
    assert (targets.labels == NUM_CLASSES).all() and targets.bbox_targets.shape == (2, 16, 4)
