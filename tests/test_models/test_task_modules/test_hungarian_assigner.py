"""HungarianAssigner and the match costs: one-to-one matching by summed costs."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules import (BBoxL1Cost, ClassificationCost, CrossEntropyLossCost,
                                        FocalLossCost, HungarianAssigner, IoUCost)
from detlab.models.task_modules.assigners import NEGATIVE_GT_IND, NO_LABEL

IMG_META = dict(img_shape=(100, 200))


def preds_and_gts():
    preds = InstanceData(
        bboxes=torch.tensor([[0., 0., 50., 50.], [100., 20., 180., 90.], [10., 10., 60., 60.],
                             [0., 0., 10., 10.]]),
        scores=torch.tensor([[5., 0., 0.], [0., 0., 5.], [4., 0., 0.], [0., 5., 0.]]))
    gts = InstanceData(bboxes=torch.tensor([[100., 20., 180., 90.], [8., 8., 58., 58.]]),
                       labels=torch.tensor([2, 0]))
    return preds, gts


def test_each_gt_gets_its_best_prediction_and_the_rest_are_negatives():
    assigner = HungarianAssigner(match_costs=[
        dict(type='ClassificationCost', weight=1.),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)])
    preds, gts = preds_and_gts()
    result = assigner.assign(preds, gts, img_meta=IMG_META)
    # Prediction 1 is gt 0 exactly; prediction 2 overlaps gt 1 best.
    assert result.gt_inds.tolist() == [NEGATIVE_GT_IND, 1, 2, NEGATIVE_GT_IND]
    assert result.labels.tolist() == [NO_LABEL, 2, 0, NO_LABEL]
    assert result.num_gts == 2


def test_no_gts_makes_every_prediction_negative_and_no_preds_is_empty():
    assigner = HungarianAssigner(match_costs=dict(type='FocalLossCost'))
    preds, gts = preds_and_gts()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    result = assigner.assign(preds, empty, img_meta=IMG_META)
    assert (result.gt_inds == NEGATIVE_GT_IND).all() and (result.labels == NO_LABEL).all()
    result = assigner.assign(InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0, 3)),
                             gts, img_meta=IMG_META)
    assert result.gt_inds.shape == (0, )
    with pytest.raises(ValueError, match='empty'):
        HungarianAssigner(match_costs=[])


def test_match_cost_values():
    preds, gts = preds_and_gts()
    l1 = BBoxL1Cost(box_format='xyxy', weight=2.0)(preds, gts, img_meta=IMG_META)
    assert l1.shape == (4, 2)
    assert l1[1, 0] == 0
    assert l1[0, 1] == pytest.approx(2.0 * (8 / 200 + 8 / 100 + 8 / 200 + 8 / 100))
    giou = IoUCost(iou_mode='giou')(preds, gts)
    assert giou[1, 0] == pytest.approx(-1.0)
    cls = ClassificationCost(weight=1.0)(preds, gts)
    assert cls[1, 0] == pytest.approx(-preds.scores[1].softmax(-1)[2].item())
    focal = FocalLossCost(alpha=0.25, gamma=2.0)(preds, gts)
    p = torch.tensor(5.).sigmoid()
    pos = -(p + 1e-12).log() * 0.25 * (1 - p)**2
    neg = -(1 - p + 1e-12).log() * 0.75 * p**2
    assert focal[1, 0] == pytest.approx((pos - neg).item(), rel=1e-5)
    with pytest.raises(ValueError, match='box_format'):
        BBoxL1Cost(box_format='cxcywh')


def test_mask_costs():
    masks = InstanceData(masks=torch.tensor([[[4., -4.], [4., -4.]], [[-4., 4.], [-4., 4.]]]))
    gt = InstanceData(masks=torch.tensor([[[1, 0], [1, 0]]]))
    ce = CrossEntropyLossCost()(masks, gt)
    assert ce.shape == (2, 1) and ce[0, 0] < ce[1, 0]
    focal = FocalLossCost(binary_input=True)(masks, gt)
    assert focal[0, 0] < focal[1, 0]
