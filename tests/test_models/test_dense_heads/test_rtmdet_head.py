"""RTMDetHead's box loss over every point (its path off the CPU) against the gathered one."""
import pytest
import torch
from mmengine.structures import InstanceData

from dense_head_cases import (GTS, METAS, RTMDET_CFG, fill_params, losses_gathered_and_dense,
                              syncing_ops_of_dense_losses)
from detlab.models.task_modules.assigners import dynamic_soft_label_assigner
from detlab.registry import MODELS

EMPTY = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))


def build(head_type):
    head = MODELS.build(dict(RTMDET_CFG, type=head_type))
    fill_params(head)
    return head


@pytest.mark.parametrize('head_type', ['RTMDetHead', 'RTMDetSepBNHead'])
@pytest.mark.parametrize('gts', ['boxes', 'none'])
def test_losses_without_gathering_positives_equal_the_gathered_ones(monkeypatch, head_type, gts):
    # Off the CPU the box loss runs over every point with zero weight off the positives;
    # forced here on the CPU, it agrees with the gathered one.
    gts = GTS if gts == 'boxes' else [EMPTY, EMPTY]
    (gathered, gathered_grads), (dense, dense_grads) = losses_gathered_and_dense(
        monkeypatch, build(head_type), gts, METAS)
    assert set(dense) == set(gathered) == {'loss_cls', 'loss_bbox'}
    for name, value in gathered.items():
        torch.testing.assert_close(dense[name], value, rtol=1e-6, atol=1e-7, msg=name)
    for gathered_grad, dense_grad in zip(gathered_grads, dense_grads):
        assert torch.isfinite(dense_grad).all()
        torch.testing.assert_close(dense_grad, gathered_grad, rtol=1e-5, atol=1e-8)
    assert (dense['loss_bbox'] > 0) == (gts is GTS)
    box_grads = dense_grads[len(dense_grads) // 2:]  # (class scores, boxes) per level
    assert any(grad.abs().sum() > 0 for grad in box_grads) == (gts is GTS)


def test_dense_losses_run_no_syncing_op(monkeypatch):
    # The assigner's candidate-column compaction is CPU-only; its other devices' path here.
    real = dynamic_soft_label_assigner.candidate_columns
    monkeypatch.setattr(dynamic_soft_label_assigner, 'candidate_columns',
                        lambda candidate, compact=True: real(candidate, False))
    assert not syncing_ops_of_dense_losses(monkeypatch, build('RTMDetHead'), GTS, METAS)
