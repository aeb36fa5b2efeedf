import math

import pytest
import torch

from detlab.registry import TASK_UTILS

PRIORS = torch.tensor([[0., 0., 10., 10.], [10., 20., 30., 60.], [5., 5., 9., 7.]])
GTS = torch.tensor([[1., 2., 11., 9.], [0., 10., 40., 90.], [6., 4., 8., 8.]])


def _coder(**kwargs):
    return TASK_UTILS.build(dict(type='DeltaXYWHBBoxCoder', **kwargs))


def test_encode_values_by_hand():
    deltas = _coder().encode(PRIORS[:1], GTS[:1])
    # Centres (5, 5) -> (6, 5.5), sizes 10 x 10 -> 10 x 7.
    assert torch.allclose(deltas, torch.tensor([[0.1, 0.05, 0., math.log(0.7)]]))
    assert _coder().encode_size == 4


@pytest.mark.parametrize('means,stds', [((0., 0., 0., 0.), (1., 1., 1., 1.)),
                                        ((0.1, -0.2, 0.0, 0.3), (0.1, 0.1, 0.2, 0.2))])
def test_round_trip_recovers_boxes(means, stds):
    coder = _coder(target_means=means, target_stds=stds)
    deltas = coder.encode(PRIORS, GTS)
    assert torch.allclose(coder.decode(PRIORS, deltas), GTS, atol=1e-4)


def test_means_and_stds_normalise_the_deltas():
    plain = _coder().encode(PRIORS, GTS)
    means, stds = (0.1, -0.2, 0.0, 0.3), (0.1, 0.1, 0.2, 0.2)
    normed = _coder(target_means=means, target_stds=stds).encode(PRIORS, GTS)
    assert torch.allclose(normed, (plain - torch.tensor(means)) / torch.tensor(stds))


def test_clipping_to_max_shape():
    coder = _coder()
    big = torch.tensor([[0., 0., math.log(4.), math.log(4.)]])  # 4x wider and taller around (5, 5)
    prior = PRIORS[:1]
    assert torch.allclose(coder.decode(prior, big), torch.tensor([[-15., -15., 25., 25.]]))
    assert torch.allclose(coder.decode(prior, big, max_shape=(12, 20)),
                          torch.tensor([[0., 0., 20., 12.]]))
    assert torch.allclose(coder.decode(prior, big, max_shape=(12, 20, 3)),
                          torch.tensor([[0., 0., 20., 12.]]))
    no_clip = _coder(clip_border=False)
    assert torch.allclose(no_clip.decode(prior, big, max_shape=(12, 20)),
                          torch.tensor([[-15., -15., 25., 25.]]))


def test_wh_ratio_clip_bounds_the_size_change():
    huge = torch.tensor([[0., 0., 100., -100.]])
    box = _coder().decode(PRIORS[:1], huge)
    limit = 1000 / 16  # exp(|log(16 / 1000)|)
    assert math.isclose(box[0, 2].item() - box[0, 0].item(), 10 * limit, rel_tol=1e-4)
    assert math.isclose(box[0, 3].item() - box[0, 1].item(), 10 / limit, rel_tol=1e-4)


def test_batched_and_class_specific_decode():
    coder = _coder()
    deltas = coder.encode(PRIORS, GTS)
    # (B, N, 4) with one clip shape per image.
    batch = coder.decode(PRIORS.expand(2, 3, 4), deltas.expand(2, 3, 4),
                         max_shape=[(100, 100), (8, 8)])
    assert torch.allclose(batch[0], GTS, atol=1e-4)
    assert batch[1].max() <= 8
    # (N, 4 * C): every class decoded from the same prior.
    two_class = coder.decode(PRIORS, torch.cat([deltas, torch.zeros_like(deltas)], dim=1))
    assert two_class.shape == (3, 8)
    assert torch.allclose(two_class[:, :4], GTS, atol=1e-4)
    assert torch.allclose(two_class[:, 4:], PRIORS)


def test_ctr_clamp_limits_centre_shift():
    coder = _coder(add_ctr_clamp=True, ctr_clamp=2)
    box = coder.decode(PRIORS[:1], torch.tensor([[5., 0., 0., 0.]]))  # would move 50 px
    assert torch.allclose(box, torch.tensor([[2., 0., 12., 10.]]))


def test_empty_inputs_and_bad_shapes():
    coder = _coder()
    assert coder.encode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    assert coder.decode(torch.zeros(0, 4), torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match='encode'):
        coder.encode(PRIORS, GTS[:2])
    with pytest.raises(ValueError, match='decode'):
        coder.decode(PRIORS, torch.zeros(3, 5))
    with pytest.raises(ValueError, match='max_shape'):
        coder.decode(PRIORS, torch.zeros(3, 4), max_shape=[(10, 10), (5, 5)])
    with pytest.raises(ValueError, match='target_stds'):
        _coder(target_stds=(1., 1., 0., 1.))


def test_no_tensor_made_from_host_values_after_the_first_call():
    """A tensor made from host values (``aten.lift_fresh``) is a copy to the
    device on a GPU, which makes the host wait: the coder makes its means and
    stds once per device and dtype, and clipping to one (h, w) uses numbers."""
    from helpers import record_syncing_ops

    from detlab.models.utils import batch_valid_flags, inside_image
    from detlab.structures.bbox import bbox_overlaps
    coder = TASK_UTILS.build(dict(type='DeltaXYWHBBoxCoder', target_means=[0.1, 0., 0., 0.2],
                                  target_stds=[0.1, 0.1, 0.2, 0.2]))
    boxes = torch.tensor([[0., 0., 10., 10.], [5., 5., 30., 20.]])
    gts = torch.tensor([[1., 1., 11., 12.], [4., 6., 28., 25.]])
    expected = coder.decode(boxes, coder.encode(boxes, gts), max_shape=(18, 26))
    with record_syncing_ops() as ops:
        decoded = coder.decode(boxes, coder.encode(boxes, gts), max_shape=(18, 26))
        bbox_overlaps(boxes, gts, mode='giou')
        batch_valid_flags([(8, 8)], [3], [(4, 5)], [(30, 25)], boxes.device)
    assert 'aten.lift_fresh' not in ops.names
    assert torch.equal(decoded, expected)
    assert torch.allclose(decoded, torch.min(gts, torch.tensor([26., 18., 26., 18.])), atol=1e-5)
    # inside_image sums its bounds on the CPU: the same flags as tensor arithmetic.
    anchors = torch.tensor([[-0.5, 0., 10., 10.], [0., 0., 25.5, 12.], [0., 0., 25.4, 12.]])
    assert inside_image(anchors, [(12.5, 25), (11, 25.45)], 0.5).tolist() == [
        [True, False, True], [True, False, False]]
