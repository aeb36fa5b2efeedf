"""ATSSAssigner on hand-made priors: which prior gets which box, and why."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules.assigners import (ATSSAssigner, IGNORED_GT_IND,
                                                  NEGATIVE_GT_IND, NO_LABEL)
from detlab.models.task_modules.assigners.atss_assigner import nearest_k
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


# ---- the whole batch at once ------------------------------------------------
BATCH_HW = (64, 80)
STRIDES = [8, 16, 32]


def batch_anchors(ratios):
    """Anchors of three levels over a 64 x 80 batch: the last level has 2 x 3
    cells, so fewer anchors than topk=9 when there is one anchor per cell."""
    generator = TASK_UTILS.build(dict(type='AnchorGenerator', octave_base_scale=8,
                                      scales_per_octave=1, ratios=ratios, strides=STRIDES))
    sizes = [(-(-BATCH_HW[0] // s), -(-BATCH_HW[1] // s)) for s in STRIDES]
    anchors = generator.grid_priors(sizes)
    return generator, sizes, torch.cat(anchors), [len(level) for level in anchors]


def random_gts(generator, count, img_hw):
    """Float boxes (no centre lies exactly between two anchors), some pairs
    nearly on top of each other so that their candidates overlap, and an exact
    duplicate of the first box."""
    xy = torch.rand(count, 2, generator=generator) * torch.tensor(img_hw[::-1]) * 0.8
    wh = 6 + torch.rand(count, 2, generator=generator) * 30
    boxes = torch.cat([xy, xy + wh], dim=1)
    if count > 3:
        boxes[1] = boxes[0] + torch.rand(4, generator=generator) * 3
        boxes[-1] = boxes[0]
    return boxes, torch.randint(0, 5, (count, ), generator=generator)


@pytest.mark.parametrize('ratios', [[1.0], [0.5, 1.0, 2.0]])
@pytest.mark.parametrize('num_gts', [(5, 0, 9), (0, 0), (1, 12)])
def test_assign_batch_equals_assign_image_by_image(ratios, num_gts):
    prior_generator, sizes, anchors, num_level = batch_anchors(ratios)
    generator = torch.Generator().manual_seed(len(ratios) * 100 + sum(num_gts))
    # Each image's own padded shape; the first is small, so that on the last
    # level (stride 32) it has one cell only: fewer valid anchors than topk.
    pad_shapes = [(20, 24), (64, 80), (48, 56)][:len(num_gts)]
    valid = torch.stack([torch.cat(prior_generator.valid_flags(sizes, pad))
                         for pad in pad_shapes])
    gts = [random_gts(generator, count, pad) for count, pad in zip(num_gts, pad_shapes)]
    gt_bboxes = torch.nn.utils.rnn.pad_sequence([boxes for boxes, _ in gts], batch_first=True)
    gt_labels = torch.nn.utils.rnn.pad_sequence([labels for _, labels in gts],
                                                batch_first=True, padding_value=-1)
    gt_valid = torch.nn.utils.rnn.pad_sequence([torch.ones(len(labels), dtype=torch.bool)
                                                for _, labels in gts], batch_first=True)
    if gt_bboxes.size(1) == 0:  # as pad_gt_instances: one padded slot
        gt_bboxes, gt_labels = torch.zeros(len(gts), 1, 4), torch.full((len(gts), 1), -1)
        gt_valid = torch.zeros(len(gts), 1, dtype=torch.bool)
    assigner = ATSSAssigner(topk=9)
    gt_inds, max_overlaps, labels = assigner.assign_batch(anchors, valid, num_level, gt_bboxes,
                                                          gt_labels, gt_valid)
    assert int((gt_inds > 0).sum()) > 0 or sum(num_gts) == 0
    for image, (inside, (boxes, image_labels)) in enumerate(zip(valid, gts)):
        level_inside = [int(flags.sum()) for flags in torch.split(inside, num_level)]
        if image == 0:
            assert level_inside[-1] < 9 and level_inside[-1] < num_level[-1]
        expected = assign(assigner, anchors[inside], level_inside, boxes, image_labels)
        assert torch.equal(gt_inds[image][inside], expected.gt_inds)
        assert torch.equal(max_overlaps[image][inside], expected.max_overlaps)
        assert torch.equal(labels[image][inside], expected.labels)
        assert (gt_inds[image][~inside] == IGNORED_GT_IND).all()
        assert (labels[image][~inside] == NO_LABEL).all()


def test_assign_batch_keeps_ties_between_gts_as_assign():
    # The duplicate gt (index 2) overlaps every prior as gt 0 does; the first wins.
    priors, gts = PRIORS, torch.cat([GT, GT + 1, GT])
    valid = torch.ones(1, len(priors), dtype=torch.bool)
    gt_inds, _, labels = ATSSAssigner(topk=3).assign_batch(
        priors, valid, [5], gts[None], torch.tensor([[1, 2, 3]]),
        torch.ones(1, 3, dtype=torch.bool))
    expected = assign(ATSSAssigner(topk=3), priors, [5], gts, torch.tensor([1, 2, 3]))
    assert torch.equal(gt_inds[0], expected.gt_inds) and torch.equal(labels[0], expected.labels)
    assert 3 not in gt_inds.tolist()


def test_assign_batch_runs_no_syncing_op():
    from helpers import record_syncing_ops
    prior_generator, sizes, anchors, num_level = batch_anchors([1.0])
    generator = torch.Generator().manual_seed(0)
    boxes, labels = random_gts(generator, 6, BATCH_HW)
    valid = torch.stack([torch.cat(prior_generator.valid_flags(sizes, pad))
                         for pad in [(20, 24), BATCH_HW]])
    with record_syncing_ops() as recorder:
        gt_inds, _, _ = ATSSAssigner(topk=9).assign_batch(
            anchors, valid, num_level, torch.stack([boxes, boxes]), torch.stack([labels, labels]),
            torch.ones(2, 6, dtype=torch.bool))
    assert 'aten.topk' in recorder.names and not recorder.syncing
    assert (gt_inds > 0).any()


def test_the_batch_is_declared_off_the_cpu_without_ignore_regions_or_ddod_cost():
    on_device = [InstanceData(bboxes=GT.to('meta'), labels=torch.tensor([0], device='meta'))]
    ignore = [InstanceData(bboxes=torch.tensor([[18., 18., 32., 32.]], device='meta'))]
    assert ATSSAssigner(topk=9).can_assign_batch(on_device, ignore)  # ignore_iof_thr=-1: unused
    assert ATSSAssigner(topk=9, ignore_iof_thr=0.5).can_assign_batch(on_device, [None])
    assert not ATSSAssigner(topk=9, ignore_iof_thr=0.5).can_assign_batch(on_device, ignore)
    assert not ATSSAssigner(topk=9, alpha=0.8).can_assign_batch(on_device)
    on_cpu = [InstanceData(bboxes=GT, labels=torch.tensor([0]))]
    assert not ATSSAssigner(topk=9).can_assign_batch(on_cpu)


def test_ties_at_the_kth_distance_take_the_first_priors():
    # Distances 15, 5, 5, 15: the two at 5 and, of the tied 15s, the first.
    distances = torch.tensor([15., 5., 5., 15.])[:, None]
    assert nearest_k(distances, 3, dim=0).flatten().tolist() == [1, 2, 0]
    # Invalid priors (infinitely far) in between change nothing but the positions.
    inf = float('inf')
    spread = torch.tensor([inf, 15., 5., inf, 5., 15.])[None, :, None]
    assert nearest_k(spread, 3, dim=1).flatten().tolist() == [2, 4, 1]
    # Equal distances are ordered by position, then come the next ones.
    assert nearest_k(distances, 4, dim=0).flatten().tolist() == [1, 2, 0, 3]


def test_assign_batch_does_not_depend_on_the_invalid_priors_even_with_ties():
    # Integer gts put many centres exactly between anchors: ties at the k-th distance.
    # Each image of the batch (invalid priors kept) equals that image alone, compacted.
    prior_generator, sizes, anchors, num_level = batch_anchors([1.0])
    generator = torch.Generator().manual_seed(7)
    pad_shapes = [(40, 56), (64, 80), (24, 24)]
    valid = torch.stack([torch.cat(prior_generator.valid_flags(sizes, pad))
                         for pad in pad_shapes])
    gts = [random_gts(generator, 8, pad) for pad in pad_shapes]
    gt_bboxes = torch.stack([boxes.round() for boxes, _ in gts])
    gt_labels = torch.stack([labels for _, labels in gts])
    assigner = ATSSAssigner(topk=9)
    batched = assigner.assign_batch(anchors, valid, num_level, gt_bboxes, gt_labels,
                                    torch.ones(3, 8, dtype=torch.bool))
    for image, inside in enumerate(valid):
        level_inside = [int(flags.sum()) for flags in torch.split(inside, num_level)]
        alone = assigner.assign_batch(anchors[inside], inside[inside][None], level_inside,
                                      gt_bboxes[image:image + 1], gt_labels[image:image + 1],
                                      torch.ones(1, 8, dtype=torch.bool))
        for got, expected in zip(batched, alone):
            assert torch.equal(got[image][inside], expected[0])
    assert (batched[0] > 0).any()
