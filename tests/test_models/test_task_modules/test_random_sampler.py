"""RandomSampler on hand-made assignments (MMDetection's sampling rules)."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules import AssignResult, RandomSampler
from detlab.registry import TASK_UTILS


def assignment(gt_inds, num_gts=2):
    gt_inds = torch.tensor(gt_inds, dtype=torch.long)
    labels = torch.where(gt_inds > 0, gt_inds + 10, torch.full_like(gt_inds, -1))
    return AssignResult(num_gts, gt_inds, torch.rand(len(gt_inds)), labels)


def priors(n):
    xy = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 2)
    return InstanceData(priors=torch.cat([xy, xy + 10], dim=1))


def gts(k=2):
    return InstanceData(bboxes=torch.tensor([[0., 0., 5., 5.], [1., 1., 8., 8.]])[:k],
                        labels=torch.tensor([3, 4])[:k])


def test_draws_pos_fraction_of_num_from_the_right_pools():
    # 10 positives (gt 1 or 2), 20 negatives, 5 ignored.
    result = assignment([1, 2] * 5 + [0] * 20 + [-1] * 5)
    sampler = RandomSampler(num=8, pos_fraction=0.5, add_gt_as_proposals=False)
    torch.manual_seed(0)
    res = sampler.sample(result, priors(35), gts())
    assert res.pos_inds.numel() == 4 and res.neg_inds.numel() == 4
    assert (res.pos_inds < 10).all() and ((res.neg_inds >= 10) & (res.neg_inds < 30)).all()
    assert torch.equal(res.pos_inds, res.pos_inds.sort()[0])  # sorted, as MMDetection's unique
    assert torch.equal(res.neg_inds, res.neg_inds.sort()[0])
    assert res.avg_factor == 8  # positives and negatives
    assert torch.equal(res.pos_gt_labels, result.labels[res.pos_inds])
    assert torch.equal(res.pos_gt_bboxes, gts().bboxes[result.gt_inds[res.pos_inds] - 1])


def test_draws_are_torch_randperm_on_the_global_generator():
    """The same seed picks the same priors as MMDetection, which permutes with randperm."""
    result = assignment([1] * 10 + [0] * 20)
    torch.manual_seed(3)
    res = RandomSampler(num=8, pos_fraction=0.25, add_gt_as_proposals=False).sample(
        result, priors(30), gts())
    torch.manual_seed(3)
    expected_pos = torch.arange(10)[torch.randperm(10)[:2]].sort()[0]
    expected_neg = (10 + torch.arange(20))[torch.randperm(20)[:6]].sort()[0]
    assert torch.equal(res.pos_inds, expected_pos)
    assert torch.equal(res.neg_inds, expected_neg)


def test_negatives_fill_up_when_positives_are_few():
    result = assignment([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, -1])
    res = RandomSampler(num=6, pos_fraction=0.5, add_gt_as_proposals=False).sample(
        result, priors(11), gts())
    assert res.pos_inds.tolist() == [0]
    assert res.neg_inds.numel() == 5 and 10 not in res.neg_inds.tolist()


def test_neg_pos_ub_caps_negatives_per_positive():
    result = assignment([1, 2] + [0] * 20)
    res = RandomSampler(num=16, pos_fraction=0.5, neg_pos_ub=3,
                        add_gt_as_proposals=False).sample(result, priors(22), gts())
    assert res.pos_inds.numel() == 2 and res.neg_inds.numel() == 6
    # No positive: the bound counts one positive.
    res = RandomSampler(num=16, pos_fraction=0.5, neg_pos_ub=3,
                        add_gt_as_proposals=False).sample(assignment([0] * 20), priors(20), gts())
    assert res.pos_inds.numel() == 0 and res.neg_inds.numel() == 3


def test_gt_boxes_become_the_first_proposals():
    result = assignment([0, 0, 0, 1])
    res = RandomSampler(num=10, pos_fraction=0.5).sample(result, priors(4), gts())
    # The 2 gts are prepended as positives matched to themselves.
    assert result.gt_inds.tolist() == [1, 2, 0, 0, 0, 1]
    assert result.labels[:2].tolist() == [3, 4]
    assert res.pos_inds.tolist() == [0, 1, 5]
    assert res.neg_inds.tolist() == [2, 3, 4]
    assert res.pos_is_gt.tolist() == [1, 1, 0]
    assert torch.equal(res.pos_priors[:2], gts().bboxes)
    assert res.pos_gt_labels.tolist() == [3, 4, 11]


def test_image_without_gt_samples_negatives_only():
    result = AssignResult(0, torch.zeros(12, dtype=torch.long), torch.zeros(12),
                          torch.full((12, ), -1))
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    res = RandomSampler(num=8, pos_fraction=0.25).sample(result, priors(12), empty)
    assert res.pos_inds.numel() == 0 and res.neg_inds.numel() == 8
    assert res.pos_gt_bboxes.shape == (0, 4)
    assert res.num_pos == 1  # the normaliser never drops to 0


def test_built_from_mmdetection_config_and_bad_values_refused():
    sampler = TASK_UTILS.build(dict(type='RandomSampler', num=512, pos_fraction=0.25,
                                    neg_pos_ub=-1, add_gt_as_proposals=True),
                               default_args=dict(context=None))
    assert isinstance(sampler, RandomSampler) and sampler.num == 512
    with pytest.raises(ValueError, match='pos_fraction'):
        RandomSampler(num=8, pos_fraction=1.5)


def test_random_pick_is_uniform_without_replacement_among_candidates():
    from detlab.models.task_modules.samplers.random_sampler import random_pick
    candidates = torch.tensor([[True, False, True, True, False, True, True, True],
                               [False] * 7 + [True]])
    counts = torch.zeros(8)
    torch.manual_seed(0)
    for _ in range(600):
        inds, valid = random_pick(candidates, torch.tensor([2, 2]), 4)
        assert inds.shape == valid.shape == (2, 4)
        assert valid.tolist()[1] == [True, False, False, False] and inds[1, 0] == 7
        picked = inds[0][valid[0]]
        assert valid[0].tolist() == [True, True, False, False]
        assert picked.unique().numel() == 2 and candidates[0, picked].all()
        counts[picked] += 1
    # Each of the 6 candidates is picked with probability 1/3: 200 of 600 draws
    # (binomial standard deviation 11.5).
    assert counts[[1, 4]].tolist() == [0, 0]
    assert ((counts[candidates[0]] - 200).abs() < 50).all(), counts


@pytest.mark.parametrize('neg_pos_ub', [-1, 2])
def test_sample_batch_draws_the_counts_of_sample(neg_pos_ub):
    """Each image gets min(positives, num * pos_fraction) positives and
    negatives filling up to num (capped by neg_pos_ub), drawn among its own
    candidates, with no syncing op."""
    from helpers import record_syncing_ops
    sampler = RandomSampler(num=8, pos_fraction=0.5, neg_pos_ub=neg_pos_ub,
                            add_gt_as_proposals=False)
    gt_inds = torch.tensor([[1, 2] * 5 + [0] * 20 + [-1] * 5,  # 10 positives, 20 negatives
                            [1] + [0] * 30 + [-1] * 4,  # 1 positive
                            [0] * 3 + [-1] * 32,  # 3 negatives, no positive
                            [2] * 3 + [0] * 2 + [-1] * 30])
    pos_mask, neg_mask = gt_inds > 0, gt_inds == 0
    with record_syncing_ops() as ops:
        pos, neg = sampler.sample_batch(pos_mask, neg_mask)
    assert not ops.syncing
    assert (pos <= pos_mask).all() and (neg <= neg_mask).all()
    assert pos.sum(1).tolist() == [4, 1, 0, 3]
    expected_neg = [4, 7, 3, 2] if neg_pos_ub < 0 else [4, 2, 2, 2]
    assert neg.sum(1).tolist() == expected_neg
    # The same counts as sample(), image by image.
    for row, (pos_row, neg_row) in enumerate(zip(pos, neg)):
        res = sampler.sample(AssignResult(2, gt_inds[row], torch.zeros(35), gt_inds[row]),
                             priors(35), gts())
        assert (res.pos_inds.numel(), res.neg_inds.numel()) == (int(pos_row.sum()),
                                                                int(neg_row.sum()))


@pytest.mark.parametrize('add_gt', [False, True])
def test_draw_slots_fills_num_slots_positives_first(add_gt):
    """draw_slots: sample()'s counts in ``num`` slots (positives, negatives,
    then unused slots on an appended zero box), distinct candidates only, no
    syncing op."""
    from helpers import record_syncing_ops
    sampler = RandomSampler(num=16, pos_fraction=0.25, add_gt_as_proposals=add_gt)
    gt_inds = [1, 2] * 5 + [0] * 7 + [-1] * 5  # 10 positives, 7 negatives
    torch.manual_seed(0)
    with record_syncing_ops() as ops:
        res = sampler.draw_slots(assignment(gt_inds), priors(22), gts())
    assert not ops.syncing
    reference = sampler.sample(assignment(gt_inds), priors(22), gts())
    num_pos, num_neg = reference.pos_inds.numel(), reference.neg_inds.numel()
    assert (num_pos, num_neg) == (4, 7 + 2 * 0)  # gts add positives only
    assert res.pos_mask.tolist() == [True] * 4 + [False] * 12
    assert res.neg_mask.tolist() == [False] * 4 + [True] * num_neg + [False] * (12 - num_neg)
    all_priors = torch.cat([gts().bboxes, priors(22).priors]) if add_gt else priors(22).priors
    used = res.pos_mask | res.neg_mask
    # Each used slot's box is a distinct prior of the right kind; unused slots hold zeros.
    rows = (res.slot_priors[used][:, None] == all_priors[None]).all(-1).int().argmax(1)
    assert rows.unique().numel() == used.sum()
    kinds = torch.tensor(([1, 2] if add_gt else []) + gt_inds)[rows]
    assert (kinds[:4] > 0).all() and (kinds[4:] == 0).all()
    assert not res.slot_priors[~used].any()
    gt_of_pos = kinds[:4] - 1
    assert torch.equal(res.pos_assigned_gt_inds, gt_of_pos)
    assert torch.equal(res.pos_gt_bboxes, gts().bboxes[gt_of_pos])
    all_labels = torch.cat([gts().labels, assignment(gt_inds).labels]) if add_gt else \
        assignment(gt_inds).labels
    assert torch.equal(res.pos_gt_labels, all_labels[rows[:4]])
    expected_is_gt = (rows[:4] < 2).tolist() if add_gt else [False] * 4
    assert res.pos_is_gt.bool().tolist() == expected_is_gt
    assert res.pos_roi_mask is res.pos_mask and res.priors.shape == (16, 4)


def test_draw_slots_without_candidates_or_gts():
    sampler = RandomSampler(num=4, pos_fraction=0.5, add_gt_as_proposals=True)
    no_gt = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    res = sampler.draw_slots(AssignResult(0, torch.zeros(0, dtype=torch.long), torch.zeros(0),
                                          torch.zeros(0, dtype=torch.long)),
                             InstanceData(priors=torch.zeros(0, 4)), no_gt)
    assert not res.pos_mask.any() and not res.neg_mask.any()
    assert res.slot_priors.shape == (4, 4) and res.pos_priors.shape == (0, 4)
    res = sampler.draw_slots(assignment([0, 0, -1], num_gts=0), priors(3), no_gt)
    assert res.neg_mask.tolist() == [True, True, False, False]
    assert res.slot_gt_bboxes.shape == (4, 4) and res.num_gts == 0
