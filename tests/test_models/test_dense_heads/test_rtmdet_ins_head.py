"""RTMDetInsHead's mask loss in slots (its path off the CPU) against the gathered one."""
import pytest
import torch
from mmengine.structures import InstanceData

from dense_head_cases import (FEAT_SIZES, GTS, METAS, RTMDET_CFG, STRIDES,
                              dense_losses_equal_gathered, fill_params,
                              syncing_ops_of_dense_losses)
from detlab.models.dense_heads import rtmdet_head
from detlab.models.task_modules.assigners import dynamic_soft_label_assigner
from detlab.registry import MODELS, TASK_UTILS

PAD_SHAPE = (64, 80)
RTMDET_INS_CFG = dict(RTMDET_CFG, type='RTMDetInsHead')


def with_masks(gts):
    """``gts`` with ``masks`` (K, 64, 80) bool: each box's inscribed ellipse."""
    rows = torch.arange(PAD_SHAPE[0]).float()[:, None] + 0.5
    cols = torch.arange(PAD_SHAPE[1]).float()[None] + 0.5
    result = []
    for gt in gts:
        masks = torch.zeros((len(gt), ) + PAD_SHAPE, dtype=torch.bool)
        for mask, (x1, y1, x2, y2) in zip(masks, gt.bboxes.tolist()):
            mask[:] = (((cols - (x1 + x2) / 2) / ((x2 - x1) / 2)) ** 2
                       + ((rows - (y1 + y2) / 2) / ((y2 - y1) / 2)) ** 2) <= 1
        result.append(InstanceData(bboxes=gt.bboxes, labels=gt.labels, masks=masks))
    return result


MASK_GTS = with_masks(GTS)
EMPTY = with_masks([InstanceData(bboxes=torch.zeros(0, 4),
                                 labels=torch.zeros(0, dtype=torch.long))] * 2)
MASK_METAS = [dict(meta, batch_input_shape=PAD_SHAPE) for meta in METAS]


def build():
    head = MODELS.build(RTMDET_INS_CFG)
    fill_params(head)
    return head


@pytest.mark.parametrize('gts', ['masks', 'none'])
def test_mask_loss_in_slots_equals_the_gathered_one(monkeypatch, gts):
    # Off the CPU the mask loss runs over a fixed number of slots with zero weight off the
    # positives; forced here on the CPU, it agrees with the gathered one.
    gts = MASK_GTS if gts == 'masks' else EMPTY
    dense = dense_losses_equal_gathered(monkeypatch, build(), gts, MASK_METAS)
    assert set(dense) == {'loss_cls', 'loss_bbox', 'loss_mask'}
    assert (dense['loss_mask'] > 0) == (gts is MASK_GTS)


def test_mask_loss_in_slots_runs_no_syncing_op(monkeypatch):
    # The assigner's candidate compaction and the box loss's gathering are CPU-only.
    real = dynamic_soft_label_assigner.candidate_columns
    monkeypatch.setattr(dynamic_soft_label_assigner, 'candidate_columns',
                        lambda candidate, compact=True: real(candidate, False))
    monkeypatch.setattr(rtmdet_head, 'gathers_positives', lambda tensor: False)
    assert not syncing_ops_of_dense_losses(monkeypatch, build(), MASK_GTS, MASK_METAS)


def test_slots_hold_every_positive_the_assigner_can_give():
    # The slots are max_matches_per_gt (topk) per gt: a gt takes that many points when the
    # predicted boxes fit it everywhere, never more.
    assigner = TASK_UTILS.build(dict(type='DynamicSoftLabelAssigner', topk=3))
    assert assigner.max_matches_per_gt == 3
    generator = TASK_UTILS.build(dict(type='MlvlPointGenerator', offset=0, strides=STRIDES))
    priors = torch.cat(generator.grid_priors(FEAT_SIZES, with_stride=True))
    num_priors = len(priors)
    generator = torch.Generator().manual_seed(0)
    corners = torch.rand(1, 4, 2, 2, generator=generator) * torch.tensor([80., 64.])
    random_gts = torch.cat([corners.min(2).values, corners.max(2).values + 4], -1)
    whole_image = torch.tensor([[[0., 0., 80., 64.]]])
    for gt_bboxes, decoded in ((whole_image, whole_image.expand(1, num_priors, 4)),
                               (random_gts, random_gts[:, torch.arange(num_priors) % 4])):
        num_gts = gt_bboxes.shape[1]
        gt_inds = assigner.assign_batch(
            priors, decoded, torch.full((1, num_priors, 4), 5.),
            torch.ones(1, num_priors, dtype=torch.bool), gt_bboxes,
            torch.arange(num_gts)[None], torch.ones(1, num_gts, dtype=torch.bool))[0]
        assert 0 < (gt_inds > 0).sum() <= 3 * num_gts
        if num_gts == 1:
            assert (gt_inds > 0).sum() == 3
