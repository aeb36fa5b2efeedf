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


def test_dense_predictions_with_same_shape_targets():
    """(N, C, H, W) predictions are accepted, as MMDetection."""
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = (torch.rand(2, 3, 4, 5) > 0.7).long()
    focal = MODELS.build(dict(type='FocalLoss', reduction='none'))
    loss = focal(logits, target)
    flat_logits = logits.permute(0, 2, 3, 1).reshape(-1, 3)
    flat_target = target.permute(0, 2, 3, 1).reshape(-1, 3)
    prob = torch.sigmoid(flat_logits)
    p_t = torch.where(flat_target == 1, prob, 1 - prob)
    alpha_t = torch.where(flat_target == 1, ALPHA, 1 - ALPHA)
    by_hand = -alpha_t * (1 - p_t)**GAMMA * torch.log(p_t)
    assert loss.shape == logits.shape
    assert torch.allclose(loss.permute(0, 2, 3, 1).reshape(-1, 3), by_hand, atol=1e-6)
    weight = torch.tensor([1.0, 0.5])  # per image
    mean = MODELS.build(dict(type='FocalLoss'))(logits, target, weight, avg_factor=4.0)
    expected = (loss[0].sum() + 0.5 * loss[1].sum()) / 4.0
    assert torch.isclose(mean, expected, atol=1e-6)


def test_soft_float_targets_follow_the_linear_formula():
    """Soft targets mix the positive and negative terms linearly (MMDetection's formula)."""
    logits = torch.tensor([[0.4, -1.0]])
    soft = torch.tensor([[0.3, 0.8]])
    loss = MODELS.build(dict(type='FocalLoss', reduction='none'))(logits, soft)
    p = torch.sigmoid(logits)
    pt = (1 - p) * soft + p * (1 - soft)
    weight = (ALPHA * soft + (1 - ALPHA) * (1 - soft)) * pt**GAMMA
    bce = -(soft * torch.log(p) + (1 - soft) * torch.log(1 - p))
    assert torch.allclose(loss, bce * weight, atol=1e-6)


def test_functional_signatures_match_mmdetection():
    from detlab.models.losses import sigmoid_focal_loss
    from detlab.models.losses.focal_loss import py_focal_loss_with_prob, py_sigmoid_focal_loss
    by_hand = _focal_by_hand(LOGITS, LABELS)
    weight = torch.tensor([1., 2., 0., 1.])
    expected = (by_hand * weight[:, None]).sum() / 5.0
    assert torch.isclose(sigmoid_focal_loss(LOGITS, LABELS, weight, 2.0, 0.25, 'mean', 5.0),
                         expected, atol=1e-6)
    one_hot = torch.nn.functional.one_hot(LABELS, 4)[:, :3]
    assert torch.isclose(py_sigmoid_focal_loss(LOGITS, one_hot, weight, avg_factor=5.0), expected,
                         atol=1e-6)
    assert torch.isclose(py_focal_loss_with_prob(torch.sigmoid(LOGITS), LABELS, weight,
                                                 avg_factor=5.0), expected, atol=1e-5)


def test_label_target_with_dense_pred_is_refused_clearly():
    with pytest.raises(ValueError, match='target'):
        MODELS.build(dict(type='FocalLoss'))(torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4).long())


def _fused_inputs(num=64, num_classes=5, dtype=torch.float64, seed=0, scale=3.0):
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(num, num_classes, generator=generator) * scale).to(dtype)
    labels = torch.randint(0, num_classes + 1, (num, ), generator=generator)  # C = background
    labels[:num_classes + 1] = torch.arange(num_classes + 1)  # every class and the background
    return logits, labels


@pytest.mark.parametrize('gamma', [2.0, 1.5])
def test_fused_focal_loss_is_the_formula_and_its_gradient_is_exact(gamma):
    from detlab.models.losses.focal_loss import SigmoidFocalLossFunction
    logits, labels = _fused_inputs()
    loss = SigmoidFocalLossFunction.apply(logits, labels, gamma, 0.3)
    expected = _focal_by_hand(logits, labels, gamma=gamma, alpha=0.3)
    assert torch.allclose(loss, expected, rtol=1e-9, atol=1e-12)
    # the closed-form backward against finite differences of the forward
    assert torch.autograd.gradcheck(
        lambda x: SigmoidFocalLossFunction.apply(x, labels, gamma, 0.3),
        (logits.clone().requires_grad_(), ))


def test_fused_focal_loss_gradient_equals_the_element_wise_one_in_fp32():
    from detlab.models.losses.focal_loss import SigmoidFocalLossFunction, py_sigmoid_focal_loss
    logits, labels = _fused_inputs(num=512, num_classes=80, dtype=torch.float32)
    weight = torch.rand(512)
    grads = []
    for fused in (True, False):
        x = logits.clone().requires_grad_()
        if fused:
            loss = (SigmoidFocalLossFunction.apply(x, labels, 2.0, 0.25) * weight[:, None]).sum()
        else:
            one_hot = torch.nn.functional.one_hot(labels, 81)[:, :80]
            loss = py_sigmoid_focal_loss(x, one_hot, weight, reduction='sum')
        loss.backward()
        grads.append((loss.detach(), x.grad))
    (fused_loss, fused_grad), (loss, grad) = grads
    assert fused_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    assert torch.allclose(fused_grad, grad, rtol=1e-4, atol=1e-7)


def test_fused_focal_loss_keeps_only_logits_and_labels_for_backward():
    from detlab.models.losses.focal_loss import SigmoidFocalLossFunction, py_sigmoid_focal_loss
    logits, labels = _fused_inputs(num=1000, num_classes=80, dtype=torch.float32)
    saved = {}

    def count(name):
        def pack(tensor):
            saved[name] = saved.get(name, 0) + tensor.numel() * tensor.element_size()
            return tensor
        return pack

    x = logits.clone().requires_grad_()
    with torch.autograd.graph.saved_tensors_hooks(count('fused'), lambda t: t):
        SigmoidFocalLossFunction.apply(x, labels, 2.0, 0.25).sum()
    with torch.autograd.graph.saved_tensors_hooks(count('element-wise'), lambda t: t):
        one_hot = torch.nn.functional.one_hot(labels, 81)[:, :80]
        py_sigmoid_focal_loss(x, one_hot, reduction='sum')
    logits_bytes = logits.numel() * logits.element_size()
    assert saved['fused'] == logits_bytes + labels.numel() * labels.element_size()
    assert saved['element-wise'] > 4 * logits_bytes


def test_fused_focal_loss_takes_half_precision_logits():
    from detlab.models.losses.focal_loss import SigmoidFocalLossFunction
    logits, labels = _fused_inputs(dtype=torch.float32)
    half = logits.to(torch.bfloat16).requires_grad_()
    loss = SigmoidFocalLossFunction.apply(half, labels, 2.0, 0.25)
    loss.sum().backward()
    assert loss.dtype == torch.float32 and half.grad.dtype == torch.bfloat16
    reference = _focal_by_hand(half.detach().float(), labels)
    assert torch.allclose(loss, reference, rtol=1e-5, atol=1e-6)


def test_fused_focal_loss_takes_labels_outside_the_classes_for_background_without_syncing():
    from detlab.models.losses.focal_loss import SigmoidFocalLossFunction
    from helpers import record_syncing_ops
    logits, _ = _fused_inputs(num=4, num_classes=3)
    background = SigmoidFocalLossFunction.apply(logits, torch.tensor([3, 3, 3, 3]), 2.0, 0.25)
    x = logits.clone().requires_grad_()
    with record_syncing_ops() as ops:
        loss = SigmoidFocalLossFunction.apply(x, torch.tensor([-1, 3, 7, 3]), 2.0, 0.25)
        loss.sum().backward()
    assert torch.equal(loss.detach(), background)
    assert not ops.syncing, ops.syncing


@pytest.mark.parametrize('weight_shape', [None, (64, ), (64, 5)])
def test_fused_focal_loss_sum_in_chunks_is_the_weighted_sum_with_its_exact_gradient(
        weight_shape, monkeypatch):
    import importlib
    focal_loss = importlib.import_module('detlab.models.losses.focal_loss')
    monkeypatch.setattr(focal_loss, 'FOCAL_CHUNK_ELEMENTS', 5 * 7)  # chunks of 7 rows
    logits, labels = _fused_inputs()
    weight = None if weight_shape is None else torch.rand(weight_shape, dtype=torch.float64)
    matched = None if weight is None else focal_loss._match_weight(weight, logits)
    total = focal_loss.SigmoidFocalLossSum.apply(logits, labels, matched, 2.0, 0.25)
    elementwise = focal_loss.SigmoidFocalLossFunction.apply(logits, labels, 2.0, 0.25)
    expected = (elementwise if matched is None else elementwise * matched).sum()
    assert total.item() == pytest.approx(expected.item(), rel=1e-12)
    assert torch.autograd.gradcheck(
        lambda x: focal_loss.SigmoidFocalLossSum.apply(x, labels, matched, 2.0, 0.25),
        (logits.clone().requires_grad_(), ))


@pytest.mark.parametrize('reduction,avg_factor', [('mean', 13.0), ('mean', None), ('sum', None),
                                                  ('none', None)])
def test_focal_loss_on_the_fused_path_reduces_as_the_element_wise_one(reduction, avg_factor,
                                                                        monkeypatch):
    import importlib
    focal_loss = importlib.import_module('detlab.models.losses.focal_loss')
    # logits within about +-6: beyond, mmcv's log(1 - p) loses the precision the CPU's
    # softplus form keeps (0.3% at a logit of 12)
    logits, labels = _fused_inputs(num=300, num_classes=7, dtype=torch.float32, scale=1.5)
    weight = torch.rand(300)
    loss = MODELS.build(dict(type='FocalLoss', reduction=reduction, loss_weight=2.0))
    expected = loss(logits, labels, weight, avg_factor=avg_factor)  # the CPU's formula
    monkeypatch.setattr(focal_loss, 'fused_focal_loss_on', lambda pred: True)
    fused = loss(logits, labels, weight, avg_factor=avg_factor)
    assert fused.shape == expected.shape
    assert torch.allclose(fused, expected, rtol=1e-5, atol=1e-7)
    empty = loss(torch.zeros(0, 7, requires_grad=True), torch.zeros(0, dtype=torch.long),
                 avg_factor=None if avg_factor is None else 0.)
    assert empty.sum().item() == 0 and empty.grad_fn is not None


def test_fused_focal_loss_sum_keeps_logits_labels_and_weight_for_backward():
    from detlab.models.losses.focal_loss import SigmoidFocalLossSum
    logits, labels = _fused_inputs(num=1000, num_classes=80, dtype=torch.float32)
    weight = torch.rand(1000, 1)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append(t.numel() * t.element_size()) or t, lambda t: t):
        SigmoidFocalLossSum.apply(logits.clone().requires_grad_(), labels, weight, 2.0, 0.25)
    assert sum(saved) == (logits.numel() * 4 + labels.numel() * labels.element_size()
                          + weight.numel() * 4)


@pytest.mark.parametrize('reduction,avg_factor', [('mean', 13.0), ('none', None)])
def test_focal_loss_on_the_fused_path_takes_bf16_logits_as_their_fp32_copy(
        reduction, avg_factor, monkeypatch):
    import importlib
    focal_loss = importlib.import_module('detlab.models.losses.focal_loss')
    loss = MODELS.build(dict(type='FocalLoss', reduction=reduction, loss_weight=2.0))
    monkeypatch.setattr(focal_loss, 'FOCAL_CHUNK_ELEMENTS', 5 * 16)  # several chunks
    logits, labels = _fused_inputs(num=300, dtype=torch.bfloat16)
    weight = torch.rand(300)
    assert not loss.upcasts_logits(logits, labels)  # the CPU: element-wise, fp32 logits
    monkeypatch.setattr(focal_loss, 'fused_focal_loss_on', lambda pred: True)
    assert loss.upcasts_logits(logits, labels)
    assert not loss.upcasts_logits(logits, torch.nn.functional.one_hot(labels, 6)[:, :5])
    # The fused loss upcasts bf16 logits itself: the values of their fp32 copy, exactly,
    # and the gradient that copy's backward would cast to bf16.
    half = logits.clone().requires_grad_()
    upcast = logits.float().requires_grad_()
    value = loss(half, labels, weight, avg_factor=avg_factor)
    expected = loss(upcast, labels, weight, avg_factor=avg_factor)
    assert value.dtype == torch.float32 and torch.equal(value, expected)
    value.sum().backward()
    expected.sum().backward()
    assert half.grad.dtype == torch.bfloat16
    assert torch.equal(half.grad, upcast.grad.to(torch.bfloat16))
    assert half.grad.abs().sum() > 0
