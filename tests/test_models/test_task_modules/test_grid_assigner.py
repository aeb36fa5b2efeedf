"""GridAssigner assigns as MMDetection 3.3's (measured with tools/dev/measure_backbones.py
--anchors on helpers.grid_assigner_case, which checks every output elementwise)."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import grid_assigner_case
from detlab.registry import TASK_UTILS

# config -> (ignored, negatives), positive prior indices, their gt_inds and labels
MMDET_ASSIGNMENTS = {
    'single_threshold': (
        dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0),
        (0, 103), [1, 58, 60, 61, 83], [2, 3, 5, 1, 4], [7, 14, 28, 0, 21]),
    'negative_range_argmax_only': (
        dict(pos_iou_thr=0.3, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.05, gt_max_assign_all=False),
        (75, 25), [1, 58, 59, 60, 61, 62, 82, 83], [2, 3, 3, 5, 1, 3, 4, 4],
        [7, 14, 14, 28, 0, 14, 21, 21]),
}
# Sum of max_overlaps (best IoU per prior, -1 where no responsible gt) in both cases.
MMDET_MAX_OVERLAPS_SUM = -92.4596


@pytest.mark.parametrize('case', sorted(MMDET_ASSIGNMENTS))
def test_assignment_matches_mmdetection(case):
    cfg, (ignored, negatives), positives, gt_inds, labels = MMDET_ASSIGNMENTS[case]
    preds, gts = grid_assigner_case()
    result = TASK_UTILS.build(dict(type='GridAssigner', **cfg)).assign(preds, gts)
    assert int((result.gt_inds == -1).sum()) == ignored
    assert int((result.gt_inds == 0).sum()) == negatives
    found = torch.nonzero(result.gt_inds > 0).squeeze(1)
    assert found.tolist() == positives
    assert result.gt_inds[found].tolist() == gt_inds
    assert result.labels[found].tolist() == labels
    assert (result.labels[result.gt_inds <= 0] == -1).all()
    assert result.max_overlaps.sum().item() == pytest.approx(MMDET_MAX_OVERLAPS_SUM, abs=1e-3)


def test_positives_only_in_responsible_cells():
    preds, gts = grid_assigner_case()
    result = TASK_UTILS.build(dict(type='GridAssigner', pos_iou_thr=0.1,
                                   neg_iou_thr=0.1)).assign(preds, gts)
    assert not (result.gt_inds[preds.responsible_flags == 0] > 0).any()


def test_no_gts_or_no_priors():
    assigner = TASK_UTILS.build(dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5))
    preds, _ = grid_assigner_case()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    result = assigner.assign(preds, empty)
    assert (result.gt_inds == 0).all() and (result.labels == -1).all()
    _, gts = grid_assigner_case()
    none = InstanceData(priors=torch.zeros(0, 4), responsible_flags=torch.zeros(0))
    assert assigner.assign(none, gts).gt_inds.numel() == 0
    with pytest.raises(ValueError, match='neg_iou_thr'):
        TASK_UTILS.build(dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.2, 0.3)))


def integer_boxes(generator, count, size=48.):
    """Boxes on a coarse pixel grid, so that many IoUs tie exactly."""
    xy = (torch.rand(count, 2, generator=generator) * size / 4).round() * 4
    wh = 4 + (torch.rand(count, 2, generator=generator) * size / 4).round() * 4
    return torch.cat([xy, xy + wh], 1)


def random_batch(generator, num_gts, num_priors=40):
    """Shared priors, each image's responsible flags (random; none in the last image,
    so its gts' best IoU is -1) and gts, padded with copies of real boxes (which
    gt_valid must keep out), some exact duplicates."""
    priors = integer_boxes(generator, num_priors)
    responsible = torch.rand(len(num_gts), num_priors, generator=generator) < 0.4
    responsible[-1] = False
    gt_bboxes = integer_boxes(generator, 1).repeat(len(num_gts), max(num_gts), 1)
    gt_valid = torch.zeros(len(num_gts), max(num_gts), dtype=torch.bool)
    for i, count in enumerate(num_gts):
        boxes = integer_boxes(generator, count)
        if count > 2:
            boxes[-1] = boxes[0]
        gt_bboxes[i, :count], gt_valid[i, :count] = boxes, True
    return priors, responsible, gt_bboxes, gt_valid


BATCH_CASES = [
    dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0),
    dict(pos_iou_thr=0.3, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.05, gt_max_assign_all=False),
    # gts of an image without responsible priors have best IoU -1: they still claim none.
    dict(pos_iou_thr=0.4, neg_iou_thr=0.2, min_pos_iou=-1.5),
    dict(pos_iou_thr=0.4, neg_iou_thr=0.2, min_pos_iou=-1.5, gt_max_assign_all=False),
]


@pytest.mark.parametrize('case', range(len(BATCH_CASES)))
def test_assign_batch_equals_assign_image_by_image(case):
    assigner = TASK_UTILS.build(dict(type='GridAssigner', **BATCH_CASES[case]))
    generator = torch.Generator().manual_seed(case)
    for num_gts in [(3, 0, 7, 1), (5, 5), (0, 0), (9, 2, 4)]:
        priors, responsible, gt_bboxes, gt_valid = random_batch(generator, num_gts)
        gt_inds, max_overlaps = assigner.assign_batch(priors, responsible, gt_bboxes, gt_valid)
        assert gt_inds.shape == max_overlaps.shape == responsible.shape
        for i, count in enumerate(num_gts):
            result = assigner.assign(
                InstanceData(priors=priors, responsible_flags=responsible[i].to(torch.uint8)),
                InstanceData(bboxes=gt_bboxes[i, :count], labels=torch.arange(count)))
            assert torch.equal(gt_inds[i], result.gt_inds), (num_gts, i)
            assert torch.equal(max_overlaps[i], result.max_overlaps), (num_gts, i)


def test_thresholds_are_strict_in_both_paths():
    """IoU exactly pos_iou_thr is not positive by step 3 (negative at neg_iou_thr);
    best IoU exactly min_pos_iou claims nothing in step 4."""
    priors = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 19.], [40., 40., 50., 50.]])
    gts = torch.tensor([[0., 0., 10., 20.], [40., 40., 50., 60.]])  # IoUs .5, .95; 0, 0, .5
    responsible = torch.tensor([[True, True, False], [True, True, True]])
    assigner = TASK_UTILS.build(dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0.5))
    gt_inds, _ = assigner.assign_batch(priors, responsible, gts[None].expand(2, -1, -1),
                                       torch.ones(2, 2, dtype=torch.bool))
    assert gt_inds.tolist() == [[0, 1, 0], [0, 1, 0]]
    for flags, inds in zip(responsible, gt_inds):
        result = assigner.assign(InstanceData(priors=priors, responsible_flags=flags),
                                 InstanceData(bboxes=gts, labels=torch.arange(2)))
        assert torch.equal(result.gt_inds, inds)


def test_assign_batch_without_priors_or_gts():
    assigner = TASK_UTILS.build(dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5))
    gt_inds, max_overlaps = assigner.assign_batch(
        torch.zeros(0, 4), torch.zeros(2, 0, dtype=torch.bool), torch.ones(2, 3, 4),
        torch.ones(2, 3, dtype=torch.bool))
    assert gt_inds.shape == max_overlaps.shape == (2, 0)
    gt_inds, max_overlaps = assigner.assign_batch(
        torch.tensor([[0., 0., 8., 8.]]), torch.ones(2, 1, dtype=torch.bool),
        torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.bool))
    assert gt_inds.tolist() == [[0], [0]] and max_overlaps.tolist() == [[0.], [0.]]
    assert assigner.can_assign_batch([InstanceData(bboxes=torch.ones(1, 4))],
                                     [InstanceData(bboxes=torch.ones(1, 4))])
