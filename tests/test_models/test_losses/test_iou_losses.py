import math

import pytest
import torch

from detlab.models.losses import ciou_loss, diou_loss, giou_loss, iou_loss
from detlab.registry import MODELS

PRED = torch.tensor([[0., 0., 10., 10.], [2., 2., 6., 8.], [0., 0., 4., 4.]])
TARGET = torch.tensor([[5., 0., 15., 10.], [2., 2., 6., 8.], [6., 6., 8., 10.]])


def _geometry(p, t):
    """IoU, enclosing box, centres of one box pair in plain Python."""
    iw = max(0.0, min(p[2], t[2]) - max(p[0], t[0]))
    ih = max(0.0, min(p[3], t[3]) - max(p[1], t[1]))
    inter = iw * ih
    area_p, area_t = (p[2] - p[0]) * (p[3] - p[1]), (t[2] - t[0]) * (t[3] - t[1])
    union = area_p + area_t - inter
    ew, eh = max(p[2], t[2]) - min(p[0], t[0]), max(p[3], t[3]) - min(p[1], t[1])
    center_dist2 = (((p[0] + p[2]) - (t[0] + t[2])) / 2)**2 + (((p[1] + p[3]) -
                                                              (t[1] + t[3])) / 2)**2
    return inter / union, union, ew * eh, ew**2 + eh**2, center_dist2


def _by_hand(kind):
    out = []
    for p, t in zip(PRED.tolist(), TARGET.tolist()):
        iou, union, enclose, diag2, dist2 = _geometry(p, t)
        if kind == 'log':
            out.append(-math.log(max(iou, 1e-6)))
        elif kind == 'linear':
            out.append(1 - iou)
        elif kind == 'square':
            out.append(1 - iou**2)
        elif kind == 'giou':
            out.append(1 - (iou - (enclose - union) / enclose))
        elif kind == 'diou':
            out.append(1 - (iou - dist2 / diag2))
        else:  # ciou
            wp, hp, wt, ht = p[2] - p[0], p[3] - p[1], t[2] - t[0], t[3] - t[1]
            v = 4 / math.pi**2 * (math.atan(wt / ht) - math.atan(wp / hp))**2
            alpha = v / (1 - iou + v) if iou > 0.5 and v > 0 else 0.0
            out.append(1 - max(-1.0, min(1.0, iou - dist2 / diag2 - alpha * v)))
    return torch.tensor(out)


@pytest.mark.parametrize('mode', ['log', 'linear', 'square'])
def test_iou_loss_modes(mode):
    loss = MODELS.build(dict(type='IoULoss', mode=mode, reduction='none'))(PRED, TARGET)
    assert torch.allclose(loss, _by_hand(mode), atol=1e-5)


@pytest.mark.parametrize('loss_type,kind', [('GIoULoss', 'giou'), ('DIoULoss', 'diou'),
                                            ('CIoULoss', 'ciou')])
def test_giou_diou_ciou(loss_type, kind):
    loss = MODELS.build(dict(type=loss_type, reduction='none'))(PRED, TARGET)
    assert torch.allclose(loss, _by_hand(kind), atol=1e-5)


def test_ciou_aspect_term_is_active_above_half_iou():
    pred, target = torch.tensor([[0., 0., 10., 12.]]), torch.tensor([[0., 0., 10., 10.]])
    iou = 100 / 120
    v = 4 / math.pi**2 * (math.atan(1.0) - math.atan(10 / 12))**2
    alpha = v / (1 - iou + v)
    dist2, diag2 = 1.0, 10**2 + 12**2
    expected = 1 - (iou - dist2 / diag2 - alpha * v)
    assert math.isclose(ciou_loss(pred, target, reduction='sum').item(), expected, rel_tol=1e-5)


@pytest.mark.parametrize('loss_type', ['IoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss'])
def test_weights_reductions_and_avg_factor(loss_type):
    by_hand = MODELS.build(dict(type=loss_type, reduction='none'))(PRED, TARGET)
    loss = MODELS.build(dict(type=loss_type, loss_weight=2.0))
    weight = torch.tensor([1.0, 0.5, 0.0])
    assert torch.isclose(loss(PRED, TARGET, weight, avg_factor=4.0),
                         2.0 * (by_hand * weight).sum() / 4.0, atol=1e-5)
    # (n, 4) weights are averaged over the coordinates.
    assert torch.isclose(loss(PRED, TARGET, weight[:, None].expand(3, 4), avg_factor=4.0),
                         2.0 * (by_hand * weight).sum() / 4.0, atol=1e-5)
    assert torch.isclose(loss(PRED, TARGET, reduction_override='sum'), 2.0 * by_hand.sum(),
                         atol=1e-5)
    assert torch.isclose(loss(PRED, TARGET), 2.0 * by_hand.mean(), atol=1e-5)
    with pytest.raises(ValueError, match='avg_factor'):
        loss(PRED, TARGET, avg_factor=1.0, reduction_override='sum')


@pytest.mark.parametrize('loss_type', ['IoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss'])
def test_empty_and_zero_weight_inputs_keep_grad(loss_type):
    loss_fn = MODELS.build(dict(type=loss_type))
    empty = torch.zeros(0, 4, requires_grad=True)
    loss = loss_fn(empty, torch.zeros(0, 4), avg_factor=0.)
    assert loss.item() == 0 and loss.grad_fn is not None
    loss = loss_fn(empty, torch.zeros(0, 4))
    assert loss.item() == 0
    loss.backward()
    pred = PRED.clone().requires_grad_()
    loss = loss_fn(pred, TARGET, weight=torch.zeros(3))
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(pred.grad, torch.zeros(3, 4))


def test_functional_forms_and_errors():
    assert torch.allclose(iou_loss(PRED, TARGET, reduction='none', mode='linear'),
                          _by_hand('linear'), atol=1e-5)
    assert torch.isclose(giou_loss(PRED, TARGET), _by_hand('giou').mean(), atol=1e-5)
    assert torch.isclose(diou_loss(PRED, TARGET, reduction='sum'), _by_hand('diou').sum(),
                         atol=1e-5)
    with pytest.warns(UserWarning, match='deprecated'):
        linear = MODELS.build(dict(type='IoULoss', linear=True, reduction='none'))
    assert torch.allclose(linear(PRED, TARGET), _by_hand('linear'), atol=1e-5)
    with pytest.raises(ValueError, match='mode'):
        MODELS.build(dict(type='IoULoss', mode='cube'))
    with pytest.raises(ValueError, match=r'\(n, 4\)'):
        MODELS.build(dict(type='GIoULoss'))(torch.zeros(2, 4), torch.zeros(3, 4))
