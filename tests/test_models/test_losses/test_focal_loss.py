import pytest
import torch

from detlab.registry import MODELS

GAMMA, ALPHA = 2.0, 0.25


def _focal_by_hand(logits: torch.Tensor, labels: torch.Tensor, gamma=GAMMA, alpha=ALPHA):
    """Element-wise -alpha_t (1 - p_t)^gamma log(p_t), label C = background."""
    num_classes = logits.size(1)
    prob = torch.sigmoid(logits)
    target = torch.zeros_like(prob)
    fg = labels < num_classes
    target[fg.nonzero()[:, 0], labels[fg]] = 1
    p_t = torch.where(target == 1, prob, 1 - prob)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return -alpha_t * (1 - p_t)**gamma * torch.log(p_t)


LOGITS = torch.tensor([[1.0, -2.0, 0.5], [-0.3, 0.2, -1.5], [2.0, 1.0, -0.5], [0.0, 0.0, 0.0]])
LABELS = torch.tensor([0, 3, 2, 1])  # 3 = background for C = 3


def test_focal_loss_matches_formula():
    loss = MODELS.build(dict(type='FocalLoss', reduction='none'))(LOGITS, LABELS)
    assert torch.allclose(loss, _focal_by_hand(LOGITS, LABELS), atol=1e-6)


def test_background_row_pushes_every_class_down():
    loss = MODELS.build(dict(type='FocalLoss', reduction='none'))(LOGITS, LABELS)
    prob = torch.sigmoid(LOGITS[1])
    expected = -(1 - ALPHA) * prob**GAMMA * torch.log(1 - prob)
    assert torch.allclose(loss[1], expected, atol=1e-6)


def test_alpha_gamma_and_loss_weight():
    loss = MODELS.build(dict(type='FocalLoss', gamma=0.0, alpha=0.5, loss_weight=3.0,
                             reduction='sum'))(LOGITS, LABELS)
    assert torch.allclose(loss, 3.0 * _focal_by_hand(LOGITS, LABELS, 0.0, 0.5).sum(), atol=1e-5)


def test_avg_factor_weight_and_reduction_override():
    focal = MODELS.build(dict(type='FocalLoss'))
    by_hand = _focal_by_hand(LOGITS, LABELS)
    assert torch.allclose(focal(LOGITS, LABELS), by_hand.mean(), atol=1e-6)
    assert torch.allclose(focal(LOGITS, LABELS, avg_factor=2.), by_hand.sum() / 2., atol=1e-6)
    weight = torch.tensor([1., 0., 2., 0.5])  # per sample, broadcast over classes
    assert torch.allclose(focal(LOGITS, LABELS, weight=weight, avg_factor=3.),
                          (by_hand * weight[:, None]).sum() / 3., atol=1e-6)
    per_class = torch.rand(4, 3)
    assert torch.allclose(focal(LOGITS, LABELS, weight=per_class, reduction_override='sum'),
                          (by_hand * per_class).sum(), atol=1e-6)


def test_one_hot_targets_and_activated_inputs():
    one_hot = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 0]])
    focal = MODELS.build(dict(type='FocalLoss', reduction='none'))
    assert torch.allclose(focal(LOGITS, one_hot), _focal_by_hand(LOGITS, LABELS), atol=1e-6)
    activated = MODELS.build(dict(type='FocalLoss', reduction='none', activated=True))
    assert torch.allclose(activated(torch.sigmoid(LOGITS), LABELS), _focal_by_hand(LOGITS, LABELS),
                          atol=1e-5)


def test_one_class():
    logits, labels = torch.tensor([[0.7], [-0.4]]), torch.tensor([0, 1])
    loss = MODELS.build(dict(type='FocalLoss', reduction='none'))(logits, labels)
    assert torch.allclose(loss, _focal_by_hand(logits, labels), atol=1e-6)


def test_empty_input_gives_zero_with_grad():
    logits = torch.zeros(0, 3, requires_grad=True)
    loss = MODELS.build(dict(type='FocalLoss'))(logits, torch.zeros(0, dtype=torch.long),
                                               avg_factor=0.)
    assert loss.item() == 0 and loss.grad_fn is not None
    loss.backward()
    assert logits.grad.shape == (0, 3)


def test_errors_are_clear():
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(dict(type='FocalLoss', use_sigmoid=False))
    focal = MODELS.build(dict(type='FocalLoss'))
    with pytest.raises(ValueError, match=r'\[0, 3\]'):
        focal(LOGITS, torch.tensor([0, 4, 1, 1]))
    with pytest.raises(ValueError, match='reduction'):
        focal(LOGITS, LABELS, reduction_override='max')
