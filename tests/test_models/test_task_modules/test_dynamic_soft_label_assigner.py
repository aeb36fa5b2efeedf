"""DynamicSoftLabelAssigner: the batch at once equals image by image; edge cases."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import record_syncing_ops
from detlab.models.task_modules.assigners import (IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL,
                                                  DynamicSoftLabelAssigner)
from detlab.models.task_modules.assigners import dynamic_soft_label_assigner
from detlab.models.task_modules.assigners.dynamic_soft_label_assigner import INF


def points(size=64, stride=8):
    """(P, 4) x, y, stride, stride of one level, offset 0 (as RTMDet)."""
    ys, xs = torch.meshgrid(torch.arange(0, size, stride), torch.arange(0, size, stride),
                            indexing='ij')
    xs, ys = xs.reshape(-1).float(), ys.reshape(-1).float()
    return torch.stack([xs, ys, torch.full_like(xs, stride), torch.full_like(xs, stride)], 1)


def predictions(priors, num_classes=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    sizes = torch.rand((len(priors), 4), generator=generator) * 20 + 2
    boxes = torch.cat([priors[:, :2] - sizes[:, :2], priors[:, :2] + sizes[:, 2:]], 1)
    return boxes, torch.randn((len(priors), num_classes), generator=generator)


GTS = [(torch.tensor([[4., 4., 30., 28.], [20., 18., 60., 50.], [33., 2., 41., 12.]]),
        torch.tensor([1, 3, 0])),
       (torch.tensor([[0., 30., 40., 63.]]), torch.tensor([2]))]


def padded_gts():
    gt_bboxes = torch.zeros(2, 3, 4)
    gt_labels = torch.full((2, 3), -1)
    gt_valid = torch.zeros(2, 3, dtype=torch.bool)
    for i, (boxes, labels) in enumerate(GTS):
        gt_bboxes[i, :len(boxes)], gt_labels[i, :len(boxes)], gt_valid[i, :len(boxes)] = \
            boxes, labels, True
    return gt_bboxes, gt_labels, gt_valid


def assign_batch(assigner, priors, preds):
    return assigner.assign_batch(
        priors, torch.stack([b for b, _ in preds]), torch.stack([s for _, s in preds]),
        torch.ones(2, len(priors), dtype=torch.bool), *padded_gts())


def every_column(monkeypatch):
    """Take the other devices' path on the CPU: every prior column."""
    monkeypatch.setattr(dynamic_soft_label_assigner, 'candidate_columns',
                        lambda candidate: slice(None))


@pytest.mark.parametrize('all_columns', [False, True])
def test_batch_at_once_equals_image_by_image(all_columns, monkeypatch):
    """On the CPU the assignment is computed on candidate columns only; on other devices
    (``all_columns``: what they take, forced here) on every column: the same result."""
    if all_columns:
        every_column(monkeypatch)
    assigner = DynamicSoftLabelAssigner(topk=5)
    priors = points()
    preds = [predictions(priors, seed=i) for i in range(2)]
    per_image = [assigner.assign(InstanceData(priors=priors, bboxes=boxes, scores=scores),
                                 InstanceData(bboxes=gt_boxes, labels=gt_labels))
                 for (boxes, scores), (gt_boxes, gt_labels) in zip(preds, GTS)]
    gt_inds, max_overlaps, labels = assign_batch(assigner, priors, preds)
    for i, result in enumerate(per_image):
        assert torch.equal(gt_inds[i], result.gt_inds)
        assert torch.equal(max_overlaps[i], result.max_overlaps)
        assert torch.equal(labels[i], result.labels)
        positive = result.gt_inds > NEGATIVE_GT_IND
        # Every gt takes at least one prior; a positive's point lies inside some gt.
        assert set(result.gt_inds[positive].tolist()) == set(range(1, len(GTS[i][0]) + 1))
        assert torch.equal(result.labels[positive], GTS[i][1][result.gt_inds[positive] - 1])
        assert (result.max_overlaps[positive] > 0).all()
        assert (result.max_overlaps[~positive] == -INF).all()
        assert (result.labels[~positive] == NO_LABEL).all()


def test_every_column_path_never_reads_values_back_to_the_host(monkeypatch):
    every_column(monkeypatch)
    priors = points()
    preds = [predictions(priors, seed=i) for i in range(2)]
    with record_syncing_ops() as recorder:
        gt_inds, _, _ = assign_batch(DynamicSoftLabelAssigner(topk=5), priors, preds)
    assert (gt_inds > NEGATIVE_GT_IND).any() and 'aten.topk' in recorder.names
    assert not recorder.syncing, recorder.syncing


def test_priors_left_out_are_ignored_and_never_positive():
    assigner = DynamicSoftLabelAssigner()
    priors = points()
    boxes, scores = predictions(priors)
    valid = torch.ones(1, len(priors), dtype=torch.bool)
    valid[0, :32] = False
    gt_inds, _, _ = assigner.assign_batch(priors, boxes[None], scores[None], valid,
                                          GTS[0][0][None], GTS[0][1][None],
                                          torch.ones(1, 3, dtype=torch.bool))
    assert (gt_inds[0, :32] == IGNORED_GT_IND).all()
    assert (gt_inds[0, 32:] >= NEGATIVE_GT_IND).all() and (gt_inds[0, 32:] > 0).any()


@pytest.mark.parametrize('gt_boxes', [torch.zeros(0, 4), torch.tensor([[1., 1., 3., 3.]])])
def test_no_gts_or_no_prior_inside_a_gt_gives_all_negatives(gt_boxes):
    """A box between the points takes none; as MMDetection, overlaps read 0."""
    priors = points()
    boxes, scores = predictions(priors)
    result = DynamicSoftLabelAssigner().assign(
        InstanceData(priors=priors, bboxes=boxes, scores=scores),
        InstanceData(bboxes=gt_boxes, labels=torch.zeros(len(gt_boxes)).long()))
    assert (result.gt_inds == NEGATIVE_GT_IND).all()
    assert (result.max_overlaps == 0).all() and (result.labels == NO_LABEL).all()


def test_a_prior_on_a_box_edge_is_not_inside_it():
    """Points strictly inside only, as MMDetection on tensor boxes."""
    priors = torch.tensor([[8., 8., 8., 8.], [16., 16., 8., 8.]])
    boxes = torch.tensor([[0., 0., 20., 20.], [4., 4., 24., 24.]])
    result = DynamicSoftLabelAssigner().assign(
        InstanceData(priors=priors, bboxes=boxes, scores=torch.zeros(2, 2)),
        InstanceData(bboxes=torch.tensor([[8., 8., 30., 30.]]), labels=torch.tensor([1])))
    assert result.gt_inds.tolist() == [NEGATIVE_GT_IND, 1]


def test_topk_must_be_positive():
    with pytest.raises(ValueError, match='topk'):
        DynamicSoftLabelAssigner(topk=0)
