"""ATSSAssigner on hand-made priors: which prior gets which box, and why."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules.assigners import (ATSSAssigner, IGNORED_GT_IND,
                                                  NEGATIVE_GT_IND, NO_LABEL)
from detlab.registry import TASK_UTILS

GT = torch.tensor([[0., 0., 10., 10.]])
# Centre distances to the gt centre (5, 5) and IoUs with the gt:
#   0: (5, 5)    d=0     IoU 1
#   1: (6, 6)    d=1.41  IoU 81/119
#   2: (8, 8)    d=4.24  IoU 49/151
#   3: (25, 25)  d=28.3  IoU 0
#   4: (3, 3)    d=2.83  IoU 64/136
PRIORS = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [3., 3., 13., 13.],
                       [20., 20., 30., 30.], [-2., -2., 8., 8.]])
IOUS = torch.tensor([1., 81 / 119, 49 / 151, 0., 64 / 136])


def assign(assigner, priors, num_level_priors, bboxes, labels, ignore=None):
    gt_ignore = None if ignore is None else InstanceData(bboxes=ignore)
    return assigner.assign(InstanceData(priors=priors), num_level_priors,
                           InstanceData(bboxes=bboxes, labels=labels), gt_ignore)


def test_threshold_is_mean_plus_std_of_the_nearest_candidates():
    assigner = TASK_UTILS.build(dict(type='ATSSAssigner', topk=3))
    assert isinstance(assigner, ATSSAssigner)
    result = assign(assigner, PRIORS, [5], GT, torch.tensor([4]))
    # Candidates are the 3 nearest: priors 0, 1, 4.
    candidate_ious = IOUS[[0, 1, 4]]
    threshold = candidate_ious.mean() + candidate_ious.std()  # about 0.98
    assert 0.9 < threshold < 1.0
    assert result.gt_inds.tolist() == [1, 0, 0, 0, 0]
    assert result.labels.tolist() == [4, NO_LABEL, NO_LABEL, NO_LABEL, NO_LABEL]
    assert result.max_overlaps[0].item() == pytest.approx(1.0)


def test_topk_is_taken_per_level():
    priors = PRIORS[1:]  # IoUs .68, .32, 0, .47
    # One level, topk=2: the two nearest are priors 1 and 4 (IoUs .68, .47), threshold
    # .58 + .15 = .72: none passes.
    result = assign(ATSSAssigner(topk=2), priors, [4], GT, torch.tensor([0]))
    assert result.gt_inds.tolist() == [0, 0, 0, 0]
    # Two levels of two, topk=2 each: all four are candidates (IoUs .68, .32, 0, .47),
    # threshold .37 + .28 = .65: the first prior passes.
    result = assign(ATSSAssigner(topk=2), priors, [2, 2], GT, torch.tensor([0]))
    assert result.gt_inds.tolist() == [1, 0, 0, 0]
    ious = IOUS[1:]
    assert ious.mean() + ious.std() < ious[0]


def test_a_candidate_whose_centre_is_outside_the_gt_is_not_positive():
    # Two levels of one prior, topk=1: both priors are candidates. Against the flat gt
    # both have IoU 40/100 (threshold .4 + std 0, reached by both), but only prior 1's
    # centre (5, 2) is inside it; prior 0's centre (5, 5) is below its bottom edge.
    priors = torch.tensor([[0., 0., 10., 10.], [0., -3., 10., 7.]])
    flat_gt = torch.tensor([[0., 0., 10., 4.]])
    result = assign(ATSSAssigner(topk=1), priors, [1, 1], flat_gt, torch.tensor([0]))
    assert result.gt_inds.tolist() == [0, 1]
    # A gt that contains both centres, with equal IoUs again (34/106): both positive.
    tall_gt = torch.tensor([[2.5, -1.5, 6.5, 8.5]])
    result = assign(ATSSAssigner(topk=1), priors, [1, 1], tall_gt, torch.tensor([0]))
    assert result.gt_inds.tolist() == [1, 1]


def test_a_prior_claimed_by_two_gts_goes_to_the_larger_overlap():
    gts = torch.tensor([[0., 0., 10., 10.], [0., 0., 12., 12.]])
    priors = torch.tensor([[0., 0., 11., 11.], [40., 40., 50., 50.], [60., 60., 70., 70.]])
    # Each gt's candidates are all three priors with IoUs (a, 0, 0): threshold
    # a / 3 + a / sqrt(3) < a, so prior 0 is positive for both gts, whose IoUs with it
    # are 100/121 and 121/144: the second gt takes it.
    result = assign(ATSSAssigner(topk=3), priors, [3], gts, torch.tensor([3, 7]))
    assert result.gt_inds.tolist() == [2, 0, 0]
    assert result.labels.tolist() == [7, NO_LABEL, NO_LABEL]
    assert result.max_overlaps[0].item() == pytest.approx(121 / 144)


def test_ignored_priors_and_empty_inputs():
    ignore = torch.tensor([[18., 18., 32., 32.]])
    result = assign(ATSSAssigner(topk=3, ignore_iof_thr=0.5), PRIORS, [5], GT,
                    torch.tensor([0]), ignore=ignore)
    assert result.gt_inds.tolist() == [1, 0, 0, IGNORED_GT_IND, 0]

    no_gt = assign(ATSSAssigner(topk=3), PRIORS, [5], torch.zeros(0, 4),
                   torch.zeros(0, dtype=torch.long))
    assert no_gt.gt_inds.tolist() == [NEGATIVE_GT_IND] * 5
    assert no_gt.labels.tolist() == [NO_LABEL] * 5 and no_gt.max_overlaps.tolist() == [0] * 5
    no_priors = assign(ATSSAssigner(topk=3), torch.zeros(0, 4), [0], GT, torch.tensor([0]))
    assert no_priors.gt_inds.shape == (0,) and no_priors.num_gts == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='topk'):
        ATSSAssigner(topk=0)
    with pytest.raises(ValueError, match='num_level_priors'):
        assign(ATSSAssigner(topk=3), PRIORS, [2, 2], GT, torch.tensor([0]))
    with pytest.raises(ValueError, match='scores and bboxes'):
        assign(ATSSAssigner(topk=3, alpha=0.8), PRIORS, [5], GT, torch.tensor([0]))


def test_ddod_cost_mixes_scores_and_predicted_box_overlaps():
    assigner = ATSSAssigner(topk=3, alpha=0.5)
    # Predicted boxes equal to the priors and a zero logit (sigmoid 0.5) for every class:
    # the cost is sqrt(0.5 * IoU), which orders priors as the IoU does.
    preds = InstanceData(priors=PRIORS, bboxes=PRIORS, scores=torch.zeros(5, 2))
    result = assigner.assign(preds, [5], InstanceData(bboxes=GT, labels=torch.tensor([1])))
    assert result.gt_inds.tolist() == [1, 0, 0, 0, 0]
    assert result.max_overlaps[0].item() == pytest.approx(0.5**0.5)
