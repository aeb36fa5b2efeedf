import math
from unittest import mock

import pytest
import torch

from detlab.models.losses import accuracy, gfocal_loss
from detlab.registry import MODELS
from helpers import record_syncing_ops

STUDENT = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.4, 0.1]])
TEACHER = torch.tensor([[2.0, 0.5, -2.0], [0.0, 1.0, 0.0]])


def _softmax(row, T):
    exps = [math.exp(v / T) for v in row]
    return [e / sum(exps) for e in exps]


def _kd_by_hand(T):
    """T^2 * mean_c q_c (log q_c - log p_c), q teacher, p student, at temperature T."""
    out = []
    for s, t in zip(STUDENT.tolist(), TEACHER.tolist()):
        p, q = _softmax(s, T), _softmax(t, T)
        out.append(T * T * sum(qc * (math.log(qc) - math.log(pc)) for pc, qc in zip(p, q)) / 3)
    return torch.tensor(out)


def test_kd_loss_matches_formula():
    kd = MODELS.build(dict(type='KnowledgeDistillationKLDivLoss', T=2, reduction='none'))
    assert torch.allclose(kd(STUDENT, TEACHER), _kd_by_hand(2), atol=1e-6)
    mean = MODELS.build(dict(type='KnowledgeDistillationKLDivLoss', loss_weight=0.5))
    weight = torch.tensor([1.0, 3.0])
    assert torch.isclose(mean(STUDENT, TEACHER, weight, avg_factor=2.0),
                         0.5 * (_kd_by_hand(10) * weight).sum() / 2.0, atol=1e-6)


def test_kd_target_gets_no_gradient_and_empty_input():
    teacher = TEACHER.clone().requires_grad_()
    student = STUDENT.clone().requires_grad_()
    MODELS.build(dict(type='KnowledgeDistillationKLDivLoss'))(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0
    loss = MODELS.build(dict(type='KnowledgeDistillationKLDivLoss'))(torch.zeros(0, 3),
                                                                     torch.zeros(0, 3))
    assert loss.item() == 0
    with pytest.raises(ValueError, match='T must be'):
        MODELS.build(dict(type='KnowledgeDistillationKLDivLoss', T=0))


LOGITS = torch.tensor([[0.5, -1.0, 2.0], [-0.5, 0.3, 0.0], [1.0, 1.0, -1.0]])
LABELS = torch.tensor([2, 3, 0])  # 3 = background
SCORES = torch.tensor([0.8, 0.0, 0.3])


def _qfl_by_hand(beta=2.0):
    """Sum over classes of BCE(sigma, y) * |y - sigma|^beta, y = score at the label, else 0."""
    out = []
    for row, label, score in zip(LOGITS.tolist(), LABELS.tolist(), SCORES.tolist()):
        total = 0.0
        for c, x in enumerate(row):
            s = 1 / (1 + math.exp(-x))
            y = score if c == label else 0.0
            total += -(y * math.log(s) + (1 - y) * math.log(1 - s)) * abs(y - s)**beta
        out.append(total)
    return torch.tensor(out)


def test_quality_focal_loss_matches_formula():
    qfl = MODELS.build(dict(type='QualityFocalLoss', reduction='none'))
    assert torch.allclose(qfl(LOGITS, (LABELS, SCORES)), _qfl_by_hand(), atol=1e-6)
    prob = MODELS.build(dict(type='QualityFocalLoss', reduction='none', activated=True))
    assert torch.allclose(prob(torch.sigmoid(LOGITS), (LABELS, SCORES)), _qfl_by_hand(),
                          atol=1e-5)
    dense = torch.zeros(3, 3)
    dense[0, 2], dense[2, 0] = 0.8, 0.3
    assert torch.allclose(qfl(LOGITS, dense), _qfl_by_hand(), atol=1e-6)
    mean = MODELS.build(dict(type='QualityFocalLoss', beta=1.0, loss_weight=2.0))
    weight = torch.tensor([1.0, 0.0, 2.0])
    assert torch.isclose(mean(LOGITS, (LABELS, SCORES), weight, avg_factor=2.0),
                         2.0 * (_qfl_by_hand(1.0) * weight).sum() / 2.0, atol=1e-6)


def test_quality_focal_loss_empty_and_errors():
    pred = torch.zeros(0, 3, requires_grad=True)
    loss = MODELS.build(dict(type='QualityFocalLoss'))(
        pred, (torch.zeros(0, dtype=torch.long), torch.zeros(0)), avg_factor=1.0)
    assert loss.item() == 0 and loss.grad_fn is not None
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(dict(type='QualityFocalLoss', use_sigmoid=False))
    with pytest.raises(ValueError, match='pair'):
        MODELS.build(dict(type='QualityFocalLoss'))(LOGITS, (LABELS, SCORES, SCORES))


def _qfl_and_grad(gathers, pred, labels, scores, beta, activated):
    """``QualityFocalLoss(reduction='none')`` and the gradient of its weighted sum, with the
    positives gathered (the CPU's path) or not (the path elsewhere, forced here)."""
    with mock.patch.object(gfocal_loss, 'gathers_positives', lambda tensor: gathers):
        pred = pred.clone().requires_grad_()
        qfl = MODELS.build(dict(type='QualityFocalLoss', reduction='none', beta=beta,
                                activated=activated))
        loss = qfl(pred, (labels, scores))
        weight = torch.linspace(-1, 2, len(loss))
        grad, = torch.autograd.grad((loss * weight).sum(), pred)
    return loss.detach(), grad


@pytest.mark.parametrize('activated', [False, True])
@pytest.mark.parametrize('beta', [2.0, 1.5])
def test_quality_focal_loss_without_gathering_positives_equals_gathered(activated, beta):
    """Many sizes: the exp/log kernels' vectorised body and scalar tail round differently."""
    generator = torch.Generator().manual_seed(0)
    for num, num_classes in [(n, 4) for n in range(1, 41)] + [(7, 1), (1000, 80)]:
        pred = torch.randn(num, num_classes, generator=generator) * 3
        pred = pred.sigmoid() if activated else pred
        labels = torch.randint(-1, num_classes + 1, (num, ), generator=generator)
        labels[:3] = torch.tensor([-1, num_classes, 0])[:num]  # negative, background, class
        scores = torch.rand(num, generator=generator)
        loss, grad = _qfl_and_grad(True, pred, labels, scores, beta, activated)
        dense_loss, dense_grad = _qfl_and_grad(False, pred, labels, scores, beta, activated)
        torch.testing.assert_close(dense_loss, loss, rtol=1e-6, atol=0)
        torch.testing.assert_close(dense_grad, grad, rtol=1e-6, atol=1e-6 * grad.abs().max())


def test_quality_focal_loss_without_gathering_positives_runs_no_syncing_op():
    qfl = MODELS.build(dict(type='QualityFocalLoss', beta=2.0))
    pred = LOGITS.clone().requires_grad_()
    with mock.patch.object(gfocal_loss, 'gathers_positives', lambda tensor: False):
        with record_syncing_ops() as recorder:
            loss = qfl(pred, (LABELS, SCORES), torch.ones(3), avg_factor=SCORES.sum())
            loss.backward()
        assert torch.isclose(loss, _qfl_by_hand().sum() / SCORES.sum(), rtol=1e-6)
        empty = torch.zeros(0, 3, requires_grad=True)
        assert qfl(empty, (torch.zeros(0, dtype=torch.long), torch.zeros(0)),
                   avg_factor=1.0).item() == 0
    assert 'aten.scatter' in recorder.names and not recorder.syncing


def test_accuracy_top_k_and_threshold():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.4, 0.35, 0.25]])
    target = torch.tensor([1, 1, 2, 1])
    top1, top2 = accuracy(scores, target, topk=(1, 2))
    assert top1.item() == pytest.approx(50.0) and top2.item() == pytest.approx(100.0)
    assert accuracy(scores, target, thresh=0.6).item() == pytest.approx(25.0)
    assert accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).item() == 0
