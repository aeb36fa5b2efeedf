import pytest
import torch

from detlab.models.task_modules import DistancePointBBoxCoder
from detlab.registry import TASK_UTILS

POINTS = torch.tensor([[10., 10.], [50., 20.]])
BOXES = torch.tensor([[0., 5., 30., 40.], [45., 0., 60., 25.]])


def test_encode_gives_side_distances_and_decode_inverts_it():
    coder = TASK_UTILS.build(dict(type='DistancePointBBoxCoder'))
    assert isinstance(coder, DistancePointBBoxCoder) and coder.encode_size == 4
    distances = coder.encode(POINTS, BOXES)
    # left, top, right, bottom
    assert distances.tolist() == [[10, 5, 20, 30], [5, 20, 10, 5]]
    assert torch.equal(coder.decode(POINTS, distances), BOXES)


def test_encode_clamps_to_max_dis_minus_eps():
    distances = DistancePointBBoxCoder().encode(POINTS, BOXES, max_dis=8, eps=0.5)
    assert distances.max().item() == 7.5 and distances.min().item() == 5


def test_decode_clips_to_the_image_unless_clip_border_is_off():
    far = torch.tensor([[20., 20., 100., 100.]])
    point = torch.tensor([[10., 10.]])
    assert DistancePointBBoxCoder().decode(point, far, max_shape=(40, 60)).tolist() == \
        [[0, 0, 60, 40]]
    assert DistancePointBBoxCoder(clip_border=False).decode(point, far, max_shape=(40, 60)) \
        .tolist() == [[-10, -10, 110, 110]]


def test_batched_decode_clips_each_image_to_its_own_shape():
    points = POINTS[None].repeat(2, 1, 1)
    distances = torch.full((2, 2, 4), 100.)
    boxes = DistancePointBBoxCoder().decode(points, distances, max_shape=[(30, 40), (80, 90)])
    assert boxes[0, :, 2:].tolist() == [[40, 30], [40, 30]]
    assert boxes[1, :, 2:].tolist() == [[90, 80], [90, 80]]


def test_empty_input_and_bad_shapes():
    coder = DistancePointBBoxCoder()
    assert coder.decode(torch.zeros(0, 2), torch.zeros(0, 4)).shape == (0, 4)
    assert coder.encode(torch.zeros(0, 2), torch.zeros(0, 4)).shape == (0, 4)
    with pytest.raises(ValueError, match='encode'):
        coder.encode(POINTS, BOXES[:1])
    with pytest.raises(ValueError, match='decode'):
        coder.decode(POINTS, torch.zeros(2, 3))
