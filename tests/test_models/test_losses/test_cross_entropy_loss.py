import math

import pytest
import torch
import torch.nn.functional as F

from detlab.models.losses import binary_cross_entropy, cross_entropy, mask_cross_entropy
from detlab.registry import MODELS

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.5, 0.5, -2.0]])
LABELS = torch.tensor([0, 2, 1, 0])


def _softmax_ce_by_hand(logits, labels, class_weight=None):
    """-w_y * log(exp(x_y) / sum_c exp(x_c)) row by row, in plain Python."""
    out = []
    for row, label in zip(logits.tolist(), labels.tolist()):
        log_sum = math.log(sum(math.exp(v) for v in row))
        w = 1.0 if class_weight is None else class_weight[label]
        out.append(-w * (row[label] - log_sum))
    return torch.tensor(out)


def _bce_by_hand(logits, targets, pos_weight=None):
    """-(p_w * t * log(sigmoid(x)) + (1 - t) * log(1 - sigmoid(x))) element-wise."""
    p = 1 / (1 + torch.exp(-logits.double()))
    pw = 1.0 if pos_weight is None else torch.tensor(pos_weight, dtype=torch.double)
    return (-(pw * targets * torch.log(p) + (1 - targets) * torch.log(1 - p))).float()


def test_softmax_matches_formula_and_torch():
    ce = MODELS.build(dict(type='CrossEntropyLoss', reduction='none'))
    by_hand = _softmax_ce_by_hand(LOGITS, LABELS)
    assert torch.allclose(ce(LOGITS, LABELS), by_hand, atol=1e-6)
    assert torch.allclose(ce(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS, reduction='none'))
    mean = MODELS.build(dict(type='CrossEntropyLoss', loss_weight=2.0))(LOGITS, LABELS)
    assert torch.isclose(mean, 2 * by_hand.mean(), atol=1e-6)


def test_softmax_weight_avg_factor_class_weight():
    ce = MODELS.build(dict(type='CrossEntropyLoss', class_weight=[1.0, 2.0, 0.5]))
    by_hand = _softmax_ce_by_hand(LOGITS, LABELS, [1.0, 2.0, 0.5])
    weight = torch.tensor([1.0, 0.0, 2.0, 1.0])
    assert torch.isclose(ce(LOGITS, LABELS, weight, avg_factor=3.0),
                         (by_hand * weight).sum() / 3.0, atol=1e-6)
    assert torch.isclose(ce(LOGITS, LABELS, reduction_override='sum'), by_hand.sum(), atol=1e-5)
    with pytest.raises(ValueError, match='avg_factor'):
        ce(LOGITS, LABELS, avg_factor=2.0, reduction_override='sum')


def test_softmax_ignore_index_and_avg_non_ignore():
    labels = torch.tensor([0, -1, 1, 0])
    by_hand = _softmax_ce_by_hand(LOGITS[[0, 2, 3]], labels[[0, 2, 3]])
    with pytest.warns(UserWarning, match='avg_non_ignore'):
        plain = MODELS.build(dict(type='CrossEntropyLoss', ignore_index=-1))
    # MMDetection's default: the ignored row counts in the mean's denominator.
    assert torch.isclose(plain(LOGITS, labels), by_hand.sum() / 4, atol=1e-6)
    non_ignore = MODELS.build(dict(type='CrossEntropyLoss', ignore_index=-1,
                                   avg_non_ignore=True))
    assert torch.isclose(non_ignore(LOGITS, labels), by_hand.mean(), atol=1e-6)
    assert torch.isclose(non_ignore(LOGITS, labels),
                         F.cross_entropy(LOGITS, labels, ignore_index=-1), atol=1e-6)
    # The call's ignore_index overrides the configured one.
    assert torch.isclose(non_ignore(LOGITS, LABELS, ignore_index=2),
                         _softmax_ce_by_hand(LOGITS[[0, 2, 3]], LABELS[[0, 2, 3]]).mean(),
                         atol=1e-6)


def test_sigmoid_expands_labels_background_and_weights():
    """use_sigmoid: (N,) labels become one-hot rows; label C is an all-zero row."""
    bce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='none'))
    labels = torch.tensor([0, 3, 1, 2])
    one_hot = torch.tensor([[1., 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 1]])
    by_hand = _bce_by_hand(LOGITS, one_hot)
    assert torch.allclose(bce(LOGITS, labels), by_hand, atol=1e-6)
    assert torch.allclose(bce(LOGITS, labels),
                          F.binary_cross_entropy_with_logits(LOGITS, one_hot, reduction='none'))
    weight = torch.tensor([1.0, 0.5, 0.0, 2.0])
    mean = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True))
    assert torch.isclose(mean(LOGITS, labels, weight, avg_factor=2.0),
                         (by_hand * weight[:, None]).sum() / 2.0, atol=1e-6)
    assert torch.isclose(mean(LOGITS, labels), by_hand.mean(), atol=1e-6)


def test_sigmoid_class_weight_is_pos_weight_and_ignore():
    pos_weight = [2.0, 1.0, 0.5]
    bce = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, class_weight=pos_weight,
                            reduction='none'))
    labels = torch.tensor([0, 3, 1, 2])
    one_hot = F.one_hot(labels, 4)[:, :3].float()
    assert torch.allclose(bce(LOGITS, labels), _bce_by_hand(LOGITS, one_hot, pos_weight),
                          atol=1e-6)
    ignore = MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, ignore_index=-1,
                               avg_non_ignore=True))
    labels = torch.tensor([0, -1, 1, 2])
    rows = [0, 2, 3]
    expected = _bce_by_hand(LOGITS[rows], F.one_hot(labels[rows], 3).float()).mean()
    assert torch.isclose(ignore(LOGITS, labels), expected, atol=1e-6)


def test_sigmoid_same_shape_targets():
    pred = torch.tensor([0.3, -1.2, 2.0])
    target = torch.tensor([1.0, 0.0, 1.0])
    loss = binary_cross_entropy(pred, target, reduction='none')
    assert torch.allclose(loss, _bce_by_hand(pred, target), atol=1e-6)


def test_mask_cross_entropy_picks_each_instance_class():
    torch.manual_seed(0)
    pred, target = torch.randn(2, 3, 4, 4), (torch.rand(2, 4, 4) > 0.5).float()
    label = torch.tensor([2, 0])
    mask = MODELS.build(dict(type='CrossEntropyLoss', use_mask=True, loss_weight=0.5))
    loss = mask(pred, target, label)
    chosen = torch.stack([pred[0, 2], pred[1, 0]])
    assert loss.shape == (1, )
    assert torch.isclose(loss[0], 0.5 * _bce_by_hand(chosen, target).mean(), atol=1e-6)
    with pytest.raises(ValueError, match='reduction'):
        mask_cross_entropy(pred, target, label, reduction='sum')


def test_empty_input_gives_zero_connected_to_graph():
    for cfg in (dict(), dict(use_sigmoid=True)):
        pred = torch.zeros(0, 3, requires_grad=True)
        loss = MODELS.build(dict(type='CrossEntropyLoss', **cfg))(pred, torch.zeros(
            0, dtype=torch.long))
        assert loss.item() == 0 and loss.grad_fn is not None
        loss.backward()
    assert cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
                         avg_factor=0.).item() == 0


def test_bad_config_raises():
    with pytest.raises(ValueError, match='use_sigmoid and use_mask'):
        MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True, use_mask=True))
    with pytest.raises(ValueError, match='reduction'):
        MODELS.build(dict(type='CrossEntropyLoss', reduction='avg'))
