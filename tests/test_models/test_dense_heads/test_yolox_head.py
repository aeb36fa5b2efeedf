"""YOLOXHead's losses off the CPU: over every point with zero weight off the positives,
equal to the CPU's gathered ones (which test_yolox.py pins to MMDetection's), and without
any op that would make the host wait for the device."""
import sys

import pytest
import torch
from mmengine.structures import InstanceData

from helpers import record_syncing_ops
from dense_head_cases import (GTS, METAS, STRIDES, dense_losses_equal_gathered, fill_params,
                              make_feats)
from detlab.models.dense_heads import yolox_head
from detlab.registry import MODELS

EMPTY = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
YOLOX_CFG = dict(type='YOLOXHead', num_classes=4, in_channels=8, feat_channels=8,
                 stacked_convs=2, strides=STRIDES,
                 train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)))


def build(use_l1: bool):
    head = MODELS.build(YOLOX_CFG)
    fill_params(head)
    head.use_l1 = use_l1  # as YOLOXModeSwitchHook turns it on
    return head


@pytest.mark.parametrize('use_l1', [False, True])
@pytest.mark.parametrize('gts', ['boxes', 'none'])
def test_dense_losses_equal_the_gathered_ones(monkeypatch, use_l1, gts):
    # Image 0 has three gts and image 1 none; 'none': a batch without any positive.
    gts = GTS if gts == 'boxes' else [EMPTY, EMPTY]
    dense = dense_losses_equal_gathered(monkeypatch, build(use_l1), gts, METAS)
    assert set(dense) == {'loss_cls', 'loss_bbox', 'loss_obj'} | (
        {'loss_l1'} if use_l1 else set())
    for name, value in dense.items():
        assert (value > 0) == (gts is GTS or name == 'loss_obj'), name


def test_dense_losses_stay_finite_with_degenerate_boxes_off_the_positives(monkeypatch):
    # Off the positives the predicted boxes are replaced, not weighted by zero: boxes
    # whose width overflows exp() and whose height underflows it (area inf * 0, NaN)
    # there leave the losses finite.
    head = build(True)
    monkeypatch.setattr(yolox_head, 'gathers_positives', lambda tensor: False)
    cls_scores, bbox_preds, objectnesses = head(make_feats())
    bbox_preds[2] = bbox_preds[2].detach().clone()
    bbox_preds[2][:, 2], bbox_preds[2][:, 3] = 1e4, -1e4  # the coarsest level's
    losses = head.loss_by_feat(cls_scores, bbox_preds, objectnesses, GTS, METAS)
    assert all(torch.isfinite(value) for value in losses.values())
    assert losses['loss_bbox'] > 0


def test_a_loss_not_reduced_by_sum_keeps_the_gathered_path(monkeypatch):
    head = MODELS.build(dict(YOLOX_CFG, loss_bbox=dict(type='IoULoss', mode='square',
                                                       eps=1e-16, reduction='mean')))
    fill_params(head)
    monkeypatch.setattr(yolox_head, 'gathers_positives', lambda tensor: False)
    monkeypatch.setattr(head, '_dense_losses', lambda *args: pytest.fail('dense path taken'))
    losses = head.loss_by_feat(*head(make_feats()), GTS, METAS)
    assert 0 < losses['loss_bbox'] < 1  # a mean over the positives, divided by their count


@pytest.mark.parametrize('gts', ['boxes', 'none'])
def test_dense_losses_run_no_syncing_op(monkeypatch, gts):
    # The CUDA paths switched on: every-point losses, SimOTA over every prior column,
    # and no CPU-only early exit of the IoU and L1 losses for all-zero weights.
    head = build(True)
    monkeypatch.setattr(yolox_head, 'gathers_positives', lambda tensor: False)
    monkeypatch.setattr(head.assigner, 'compact_on_cpu', False)
    for module in ('iou_loss', 'smooth_l1_loss'):
        monkeypatch.setattr(sys.modules[f'detlab.models.losses.{module}'], 'weights_all_zero',
                            lambda weight: False)
    outputs = head(make_feats())
    with record_syncing_ops() as recorder:
        losses = head.loss_by_feat(*outputs, GTS if gts == 'boxes' else [EMPTY, EMPTY], METAS)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_obj', 'loss_l1'}
    assert 'aten.topk' in recorder.names  # SimOTA's matching ran
    assert not recorder.syncing, recorder.syncing
