"""ATSSHead: MMDetection's layer names, targets, and its losses and detections on fixed weights."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import record_syncing_ops
from dense_head_cases import (ATSS_CFG, FEAT_SIZES, GTS, METAS, dense_losses_equal_gathered,
                              fill_params, make_feats, syncing_ops_of_dense_losses)
from detlab.registry import MODELS

EMPTY = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
NUM_CLASSES = 4


def build(**overrides):
    head = MODELS.build(dict(ATSS_CFG, **overrides))
    fill_params(head)
    return head


def test_state_dict_keys_are_mmdetections():
    keys = list(build().state_dict())
    tower = [f'{tower}.{i}.{part}' for tower in ('cls_convs', 'reg_convs') for i in range(2)
             for part in ('conv.weight', 'gn.weight', 'gn.bias')]
    assert keys == tower + ['atss_cls.weight', 'atss_cls.bias', 'atss_reg.weight',
                            'atss_reg.bias', 'atss_centerness.weight', 'atss_centerness.bias',
                            'scales.0.scale', 'scales.1.scale', 'scales.2.scale']


def test_losses_equal_mmdetections():
    # Measured with MMDetection 3.3's ATSSHead on the same weights and features
    # (dense_head_cases.py); both return one loss per level, pinned here as their sums.
    head = build()
    losses = head.loss_by_feat(*head(make_feats()), GTS, METAS)
    expected = dict(loss_cls=65.033638, loss_bbox=1.09556, loss_centerness=0.738045)
    for name, value in expected.items():
        assert len(losses[name]) == len(FEAT_SIZES), name
        assert sum(losses[name]).item() == pytest.approx(value, rel=1e-5), name
    sum(sum(levels) for levels in losses.values()).backward()
    assert head.atss_reg.weight.grad.abs().sum() > 0


def test_detections_equal_mmdetections():
    head = build().eval()
    with torch.no_grad():
        results = head.predict_by_feat(*head(make_feats()), batch_img_metas=METAS, rescale=True)
    assert [len(r) for r in results] == [20, 20]
    expected = [(6.77969, [0.0, 0.0, 12.573332, 12.263211], [3, 1, 3, 0, 2]),
                (8.49591, [14.528755, 31.966784, 49.126884, 56.0], [2, 2, 3, 2, 3])]
    for result, (score_sum, box, labels) in zip(results, expected):
        assert result.scores.sum().item() == pytest.approx(score_sum, rel=1e-5)
        assert result.bboxes[0].tolist() == pytest.approx(box, abs=1e-4)
        assert result.labels[:5].tolist() == labels


def test_targets_follow_the_assigner_and_ignore_anchors_off_the_image():
    head = build()
    anchors = torch.cat(head.prior_generator.grid_priors(FEAT_SIZES))
    targets = head.get_targets(anchors, FEAT_SIZES, GTS, METAS)
    num_anchors = anchors.shape[0]
    assert targets.labels.shape == (2, num_anchors)
    positive = targets.labels[0] < NUM_CLASSES
    assert positive.any()
    # Each positive anchor regresses (decoded) the box of its label, and its centre is inside.
    gt_boxes, gt_labels = GTS[0].bboxes, GTS[0].labels
    for index in positive.nonzero().flatten().tolist():
        box = targets.bbox_targets[0, index]
        gt = (gt_boxes == box).all(dim=1).nonzero().flatten()
        assert len(gt) == 1 and gt_labels[gt].item() == targets.labels[0, index].item()
        centre = (anchors[index, :2] + anchors[index, 2:]) / 2
        assert (centre > box[:2]).all() and (centre < box[2:]).all()
    assert torch.equal(targets.bbox_weights[0, :, 0], positive.float())
    # Image 1 has no boxes: all negatives, weight 1 on its own (valid) anchors only. Its
    # pad_shape equals the batch's here, so every anchor is valid.
    assert (targets.labels[1] == NUM_CLASSES).all() and (targets.label_weights[1] == 1).all()
    assert targets.avg_factor.item() == positive.sum().item() + 1  # at least one per image
    # A smaller pad_shape makes the anchors of the extra cells invalid: weight 0.
    small = [METAS[0], dict(METAS[1], pad_shape=(32, 40))]
    weights = head.get_targets(anchors, FEAT_SIZES, GTS, small).label_weights[1]
    level0 = weights[:FEAT_SIZES[0][0] * FEAT_SIZES[0][1]].reshape(FEAT_SIZES[0])
    assert level0[:4, :5].eq(1).all() and level0[4:].eq(0).all() and level0[:, 5:].eq(0).all()


@pytest.mark.parametrize('allowed_border', [-1, 0])
def test_batched_targets_equal_per_image_targets_and_never_sync(monkeypatch, allowed_border):
    head = build(train_cfg=dict(ATSS_CFG['train_cfg'], allowed_border=allowed_border))
    # Image by image on the CPU (MMDetection's ties); the whole batch as off the CPU.
    assert not head.targets_run_batched(GTS, [None, None])
    monkeypatch.setattr(head.assigner, 'can_assign_batch', lambda *args: True)
    anchors = torch.cat(head.prior_generator.grid_priors(FEAT_SIZES))
    # Three images: the last is small and padded into the batch, so that some anchors are
    # invalid and its last level has fewer valid anchors than topk.
    gts = GTS + [InstanceData(bboxes=torch.tensor([[6.5, 5.25, 30.75, 33.5]]),
                              labels=torch.tensor([2]))]
    metas = METAS + [dict(img_shape=(56, 64), pad_shape=(64, 64), scale_factor=(1.0, 1.0))]
    assert head.targets_run_batched(gts, [None] * 3)
    with record_syncing_ops() as recorder:
        batched = head.get_targets(anchors, FEAT_SIZES, gts, metas)
    assert 'aten.topk' in recorder.names and not recorder.syncing
    head.sampler.supports_batch = False
    assert not head.targets_run_batched(gts, [None] * 3)
    per_image = head.get_targets(anchors, FEAT_SIZES, gts, metas)
    for name in ('labels', 'label_weights', 'bbox_targets', 'bbox_weights', 'avg_factor'):
        assert torch.equal(getattr(batched, name), getattr(per_image, name)), name
    assert (batched.labels[2] < NUM_CLASSES).any() and (batched.label_weights[2] == 0).any()


def test_no_gt_gives_zero_box_losses_and_still_trains_the_classifier():
    head = build()
    losses = head.loss_by_feat(*head(make_feats()), [EMPTY, EMPTY], METAS)
    assert sum(losses['loss_bbox']).item() == 0 and sum(losses['loss_centerness']).item() == 0
    assert sum(losses['loss_cls']).item() > 0
    sum(sum(levels) for levels in losses.values()).backward()
    assert head.atss_cls.weight.grad.abs().sum() > 0


def test_unsupported_settings_are_refused_by_name():
    with pytest.raises(ValueError, match='reg_decoded_bbox'):
        MODELS.build(dict(ATSS_CFG, reg_decoded_bbox=False))
    with pytest.raises(ValueError, match='sampler'):
        MODELS.build(dict(ATSS_CFG, train_cfg=dict(
            ATSS_CFG['train_cfg'], sampler=dict(type='RandomSampler', num=8, pos_fraction=0.5))))


@pytest.mark.parametrize('gts', ['boxes', 'none'])
def test_losses_without_gathering_positives_equal_the_gathered_ones(monkeypatch, gts):
    # Off the CPU the box and centerness losses run over every anchor with zero weight off
    # the positives; forced here on the CPU, they agree with the gathered ones.
    gts = GTS if gts == 'boxes' else [EMPTY, EMPTY]
    dense = dense_losses_equal_gathered(monkeypatch, build(), gts, METAS)
    assert (dense['loss_bbox'] > 0) == (gts is GTS)


def test_dense_losses_and_batched_targets_run_no_syncing_op(monkeypatch):
    assert not syncing_ops_of_dense_losses(monkeypatch, build(), GTS, METAS)
