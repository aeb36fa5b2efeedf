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
