"""MaxIoUAssigner with Faster R-CNN's RPN and R-CNN settings, on hand-made boxes.

RPN: pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True.
R-CNN: pos_iou_thr=neg_iou_thr=min_pos_iou=0.5, match_low_quality=False.
"""
import torch
from mmengine.structures import InstanceData

from detlab.registry import TASK_UTILS

RPN = dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
           match_low_quality=True, ignore_iof_thr=-1)
RCNN = dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
            match_low_quality=False, ignore_iof_thr=-1)


def assign(cfg, priors, gt_boxes, labels=None):
    gt_boxes = torch.tensor(gt_boxes, dtype=torch.float32)
    labels = torch.arange(len(gt_boxes)) + 5 if labels is None else torch.tensor(labels)
    return TASK_UTILS.build(cfg).assign(
        InstanceData(priors=torch.tensor(priors, dtype=torch.float32)),
        InstanceData(bboxes=gt_boxes, labels=labels))


def test_rpn_low_quality_match_rescues_a_gt_without_a_high_iou_anchor():
    # gt 0 = [0, 0, 10, 10]; anchor 0 covers half of it (IoU 0.5), anchor 1 a fifth
    # (IoU 0.2), anchor 2 is far away. gt 1 = [100, 100, 110, 110] matches anchor 3 exactly.
    priors = [[0, 0, 10, 5], [0, 0, 2, 10], [50, 50, 60, 60], [100, 100, 110, 110]]
    result = assign(RPN, priors, [[0, 0, 10, 10], [100, 100, 110, 110]])
    # anchor 0: IoU 0.5 is between the thresholds (ignored) but it is gt 0's best -> positive.
    assert result.gt_inds.tolist() == [1, 0, 0, 2]
    assert result.labels.tolist() == [5, -1, -1, 6]
    assert torch.allclose(result.max_overlaps, torch.tensor([0.5, 0.2, 0., 1.]))


def test_rpn_gt_whose_best_iou_is_below_min_pos_iou_gets_nothing():
    # Best IoU with gt is 0.2 < min_pos_iou 0.3: the anchor stays negative.
    result = assign(RPN, [[0, 0, 2, 10], [30, 30, 40, 40]], [[0, 0, 10, 10]])
    assert result.gt_inds.tolist() == [0, 0]
    # Between neg_iou_thr and pos_iou_thr and not anyone's best: ignored.
    result = assign(RPN, [[0, 0, 10, 5], [0, 0, 10, 6]], [[0, 0, 10, 10]])
    assert result.gt_inds.tolist() == [-1, 1]


def test_rpn_ties_all_take_the_gt_and_later_gt_wins_a_shared_anchor():
    # Two anchors tie (IoU 0.5) for gt 0: gt_max_assign_all gives both.
    result = assign(RPN, [[0, 0, 10, 5], [0, 5, 10, 10]], [[0, 0, 10, 10]])
    assert result.gt_inds.tolist() == [1, 1]
    # One anchor is the best of two gts: the later gt takes it (MMDetection's loop order).
    result = assign(RPN, [[0, 0, 10, 10], [50, 50, 51, 51]], [[0, 0, 10, 20], [0, 0, 20, 10]])
    assert result.gt_inds.tolist() == [2, 0]


def test_rcnn_thresholds_without_low_quality_matches():
    # IoUs 0.5 (positive: >= pos_iou_thr), 0.4 (negative: < neg_iou_thr), 0.
    priors = [[0, 0, 10, 5], [0, 0, 10, 4], [20, 20, 30, 30]]
    result = assign(RCNN, priors, [[0, 0, 10, 10]])
    assert result.gt_inds.tolist() == [1, 0, 0]
    # A gt with no proposal at 0.5 stays unmatched: no low-quality rescue in R-CNN.
    result = assign(RCNN, [[0, 0, 10, 4]], [[0, 0, 10, 10]])
    assert result.gt_inds.tolist() == [0]


def test_no_gt_and_no_proposals():
    result = assign(RCNN, [[0, 0, 10, 10]], torch.zeros(0, 4).tolist(), labels=[])
    assert result.gt_inds.tolist() == [0]
    result = assign(RPN, torch.zeros(0, 4).tolist(), [[0, 0, 10, 10]])
    assert result.gt_inds.numel() == 0
