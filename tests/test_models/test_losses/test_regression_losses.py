import pytest
import torch

from detlab.models.losses import (l1_loss, mse_loss, reduce_loss, smooth_l1_loss,
                                  weight_reduce_loss)
from detlab.registry import MODELS

PRED = torch.tensor([[0.0, 2.0, 3.0, 0.2]])
TARGET = torch.tensor([[1.0, 1.0, 1.0, 0.0]])


def test_l1_loss_values():
    l1 = MODELS.build(dict(type='L1Loss'))
    assert torch.isclose(l1(PRED, TARGET), torch.tensor((1 + 1 + 2 + 0.2) / 4))
    assert torch.isclose(l1(PRED, TARGET, reduction_override='sum'), torch.tensor(4.2))
    weight = torch.tensor([[1., 0., 1., 1.]])
    assert torch.isclose(l1(PRED, TARGET, weight=weight, avg_factor=2.), torch.tensor(3.2 / 2))
    scaled = MODELS.build(dict(type='L1Loss', loss_weight=2.0, reduction='none'))
    assert torch.allclose(scaled(PRED, TARGET), 2 * torch.tensor([[1., 1., 2., 0.2]]))


def test_smooth_l1_loss_values():
    smooth = MODELS.build(dict(type='SmoothL1Loss', beta=1.0, reduction='none'))
    # |d| = 1, 1, 2, 0.2 -> d >= beta: d - 0.5; below: 0.5 d^2 / beta.
    assert torch.allclose(smooth(PRED, TARGET), torch.tensor([[0.5, 0.5, 1.5, 0.02]]))
    half = MODELS.build(dict(type='SmoothL1Loss', beta=0.5, reduction='sum'))
    # beta 0.5: 0.75, 0.75, 1.75, 0.5 * 0.04 / 0.5 = 0.04.
    assert torch.isclose(half(PRED, TARGET), torch.tensor(3.29))


def test_per_sample_weight_broadcasts_over_coordinates():
    l1 = MODELS.build(dict(type='L1Loss', reduction='sum'))
    pred, target = torch.ones(2, 4), torch.zeros(2, 4)
    assert l1(pred, target, weight=torch.tensor([1., 0.])).item() == 4.


@pytest.mark.parametrize('loss_type', ['L1Loss', 'SmoothL1Loss'])
def test_empty_and_zero_weight_inputs_keep_grad(loss_type):
    loss_fn = MODELS.build(dict(type=loss_type))
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = loss_fn(empty, torch.zeros(0, 4), avg_factor=0.)
    assert loss.item() == 0 and loss.grad_fn is not None
    loss.backward()
    pred = torch.ones(2, 4, requires_grad=True)
    loss = loss_fn(pred, torch.zeros(2, 4), weight=torch.zeros(2, 4))
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros(2, 4))


def test_weight_reduce_loss_semantics():
    loss = torch.tensor([1., 2., 3.])
    weight = torch.tensor([1., 0., 2.])
    assert weight_reduce_loss(loss, weight, 'sum').item() == 7.
    assert torch.isclose(weight_reduce_loss(loss, weight, 'mean'), torch.tensor(7 / 3))
    assert torch.isclose(weight_reduce_loss(loss, weight, 'mean', avg_factor=2.), torch.tensor(3.5))
    assert torch.equal(weight_reduce_loss(loss, None, 'none', avg_factor=2.), loss)
    assert weight_reduce_loss(loss, None, 'mean', avg_factor=0.).isfinite()
    with pytest.raises(ValueError, match='avg_factor'):
        weight_reduce_loss(loss, None, 'sum', avg_factor=2.)
    with pytest.raises(ValueError, match='reduction'):
        reduce_loss(loss, 'max')


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='beta'):
        MODELS.build(dict(type='SmoothL1Loss', beta=0.))
    with pytest.raises(ValueError, match='reduction'):
        MODELS.build(dict(type='L1Loss', reduction='avg'))
    with pytest.raises(ValueError, match='same shape'):
        MODELS.build(dict(type='L1Loss'))(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match='beta'):
        smooth_l1_loss(torch.zeros(1, 4), torch.zeros(1, 4), beta=-1.0)


@pytest.mark.parametrize('loss_type', ['L1Loss', 'SmoothL1Loss', 'MSELoss'])
@pytest.mark.parametrize('num', [0, 3])
def test_avg_factor_with_sum_is_refused_for_any_input(loss_type, num):
    """refused for empty input too, as MMDetection."""
    loss_fn = MODELS.build(dict(type=loss_type, reduction='sum'))
    pred, target = torch.rand(num, 4), torch.rand(num, 4)
    with pytest.raises(ValueError, match='avg_factor'):
        loss_fn(pred, target, avg_factor=2.0)
    with pytest.raises(ValueError, match='avg_factor'):
        loss_fn(pred, target, weight=torch.zeros(num, 4), avg_factor=2.0)
    with pytest.raises(ValueError, match='avg_factor'):
        MODELS.build(dict(type=loss_type))(pred, target, avg_factor=2.0, reduction_override='sum')


def test_mse_loss_matches_formula_and_torch():
    pred, target = torch.tensor([[1.0, -2.0], [0.5, 3.0]]), torch.tensor([[0.0, 1.0], [0.5, 1.0]])
    by_hand = torch.tensor([[1.0, 9.0], [0.0, 4.0]])
    mse = MODELS.build(dict(type='MSELoss', reduction='none', loss_weight=0.5))
    assert torch.allclose(mse(pred, target), 0.5 * by_hand)
    mean = MODELS.build(dict(type='MSELoss'))
    assert torch.isclose(mean(pred, target), torch.nn.functional.mse_loss(pred, target))
    weight = torch.tensor([[1.0, 0.0], [2.0, 1.0]])
    assert torch.isclose(mean(pred, target, weight, avg_factor=2.0), torch.tensor(5.0 / 2.0))
    assert torch.isclose(mse_loss(pred, target, reduction='sum'), torch.tensor(14.0))
    empty = torch.zeros(0, 2, requires_grad=True)
    loss = mean(empty, torch.zeros(0, 2))
    assert loss.item() == 0 and loss.grad_fn is not None


def test_functional_forms_take_weight_reduction_avg_factor():
    weight = torch.tensor([[1., 0., 1., 1.]])
    assert torch.isclose(l1_loss(PRED, TARGET, weight, avg_factor=2.), torch.tensor(1.6))
    assert torch.isclose(smooth_l1_loss(PRED, TARGET, reduction='sum', beta=0.5),
                         torch.tensor(3.29))


@pytest.mark.parametrize('cfg', [dict(type='L1Loss'), dict(type='SmoothL1Loss', beta=0.5),
                                 dict(type='IoULoss'), dict(type='GIoULoss'),
                                 dict(type='DIoULoss'), dict(type='CIoULoss')])
@pytest.mark.parametrize('avg_factor', [None, 7.0])
def test_all_zero_weights_give_a_zero_loss_without_the_early_exit(cfg, avg_factor, monkeypatch):
    """Off the CPU the losses skip MMDetection's early exit for all-zero weights (its test
    reads the weights back to the host); the full computation must give zero too."""
    import importlib
    modules = [importlib.import_module(f'detlab.models.losses.{name}')
               for name in ('iou_loss', 'smooth_l1_loss')]
    loss_fn = MODELS.build(cfg)
    torch.manual_seed(0)
    xy = torch.rand(6, 2) * 50
    pred = torch.cat([xy, xy + 1 + torch.rand(6, 2) * 30], 1).requires_grad_()
    target = torch.cat([xy + 3, xy + 20], 1)
    weight = torch.zeros(6, 4) if cfg['type'] in ('L1Loss', 'SmoothL1Loss') else torch.zeros(6)
    early = loss_fn(pred, target, weight, avg_factor=avg_factor)
    for module in modules:
        monkeypatch.setattr(module, 'weights_all_zero', lambda weight: False)
    full = loss_fn(pred, target, weight, avg_factor=avg_factor)
    full.backward()
    assert early.item() == 0 and full.item() == 0
    assert torch.equal(pred.grad, torch.zeros_like(pred))
