"""HorizontalBoxes, the box type registry and the box helpers."""
import copy

import numpy as np
import pytest
import torch

from detlab.structures.bbox import (BaseBoxes, HorizontalBoxes, autocast_box_type, cat_boxes,
                                    convert_box_type, empty_box_as, get_box_tensor,
                                    get_box_type, register_box, register_box_converter,
                                    stack_boxes)
from detlab.structures.mask import BitmapMasks, PolygonMasks


def boxes():
    return HorizontalBoxes([[10., 20, 30, 60], [0, 0, 4, 2]])


def test_construction_and_tensor_behaviour():
    b = boxes()
    assert b.shape == (2, 4) and len(b) == 2 and b.dtype == torch.float32
    assert HorizontalBoxes([]).shape == (0, 4)
    assert HorizontalBoxes(np.zeros((2, 3, 4))).shape == (2, 3, 4)
    assert HorizontalBoxes([[20, 40, 20, 40]], in_mode='cxcywh').tensor.tolist() == [
        [10, 20, 30, 60]]
    with pytest.raises(ValueError, match=r'\(\.\.\., 4\)'):
        HorizontalBoxes([[1, 2, 3]])
    with pytest.raises(ValueError, match='in_mode'):
        HorizontalBoxes([[1, 2, 3, 4]], in_mode='xywh')
    source = torch.zeros(1, 4)
    assert HorizontalBoxes(source, clone=False).tensor.data_ptr() == source.data_ptr()
    assert HorizontalBoxes(source).tensor.data_ptr() != source.data_ptr()
    # indexing keeps the box dimension
    assert b[0].shape == (1, 4) and b[np.array([False, True])].tensor.tolist() == [[0, 0, 4, 2]]
    assert b[torch.tensor([1, 0])].tensor[0].tolist() == [0, 0, 4, 2]
    with pytest.raises(IndexError):
        b[:, 0]  # would reach into the box dimension
    b[1] = HorizontalBoxes([[1., 1, 2, 2]])
    assert b.tensor[1].tolist() == [1, 1, 2, 2]
    with pytest.raises(TypeError):
        b[0] = torch.zeros(1, 4)
    clone = copy.deepcopy(b)
    clone.tensor += 1
    assert b.tensor[0, 0] == 10
    assert b.reshape(1, 2, 4).shape == (1, 2, 4) and b.view(-1, 4).shape == (2, 4)
    with pytest.raises(ValueError, match='last dimension'):
        b.reshape(8)
    assert [len(p) for p in b.split(1)] == [1, 1] and b.unsqueeze(0).shape == (1, 2, 4)
    assert b.to('cpu').device.type == 'cpu' and isinstance(b.detach(), HorizontalBoxes)
    assert isinstance(b.numpy(), np.ndarray) and b.numel() == 8


def test_geometry_properties():
    b = boxes()
    assert b.widths.tolist() == [20, 4] and b.heights.tolist() == [40, 2]
    assert b.areas.tolist() == [800, 8]
    assert b.centers.tolist() == [[20, 40], [2, 1]]
    assert b.cxcywh.tolist() == [[20, 40, 20, 40], [2, 1, 4, 2]]


@pytest.mark.parametrize('direction, expected', [
    ('horizontal', [70, 20, 90, 60]),
    ('vertical', [10, 40, 30, 80]),
    ('diagonal', [70, 40, 90, 80]),
])
def test_flip_in_place(direction, expected):
    b = boxes()
    b.flip_((100, 100), direction)
    assert b.tensor[0].tolist() == expected


def test_in_place_operations():
    b = boxes()
    b.translate_((5, -5))
    assert b.tensor[0].tolist() == [15, 15, 35, 55]
    b.clip_((50, 32))
    assert b.tensor[0].tolist() == [15, 15, 32, 50]
    b = boxes()
    b.rescale_((2, 0.5))
    assert b.tensor[0].tolist() == [20, 10, 60, 30]
    b = boxes()
    b.resize_((2, 0.5))  # about fixed centres
    assert b.tensor[0].tolist() == [0, 30, 40, 50]
    b = HorizontalBoxes([[0., 0, 10, 10]])
    b.rotate_((5, 5), 90)
    assert torch.allclose(b.tensor, torch.tensor([[0., 0, 10, 10]]), atol=1e-5)
    b = HorizontalBoxes([[0., 0, 10, 0]])
    b.rotate_((0, 0), 90)  # clockwise in image coordinates (y down): +x turns to +y
    assert torch.allclose(b.tensor, torch.tensor([[0., 0, 0, 10]]), atol=1e-5)
    b = boxes()
    b.project_(np.array([[2, 0, 1], [0, 3, 2], [0, 0, 1]], np.float32))
    assert b.tensor[0].tolist() == [21, 62, 61, 182]


def test_inside_and_points():
    b = HorizontalBoxes([[0., 0, 10, 10], [-5, -5, -1, -1], [95, 5, 105, 10]])
    assert b.is_inside((100, 100)).tolist() == [True, False, True]
    assert b.is_inside((100, 100), all_inside=True).tolist() == [True, False, False]
    points = torch.tensor([[5., 5], [-3, -3]])
    assert b.find_inside_points(points).tolist() == [[True, False, False], [False, True, False]]
    assert b[:2].find_inside_points(points, is_aligned=True).tolist() == [True, True]


def test_overlaps_masks_and_helpers():
    a, b = HorizontalBoxes([[0., 0, 10, 10]]), HorizontalBoxes([[5., 0, 15, 10], [20, 20, 30, 30]])
    assert torch.allclose(HorizontalBoxes.overlaps(a, b), torch.tensor([[1 / 3, 0]]))
    masks = a.create_masks((12, 12))
    assert isinstance(masks, BitmapMasks) and masks.masks[0].sum() == 100
    assert HorizontalBoxes.from_instance_masks(masks).tensor.tolist() == [[0, 0, 10, 10]]
    polys = PolygonMasks([[np.array([1., 2, 8, 2, 8, 9])]], 12, 12)
    assert HorizontalBoxes.from_instance_masks(polys).tensor.tolist() == [[1, 2, 8, 9]]
    with pytest.raises(TypeError):
        HorizontalBoxes.from_instance_masks(np.zeros((1, 4, 4)))
    assert get_box_tensor(a) is a.tensor and get_box_tensor(a.tensor) is a.tensor
    assert isinstance(empty_box_as(a), HorizontalBoxes) and empty_box_as(a).shape == (0, 4)
    assert empty_box_as(torch.zeros(3, 4)).shape == (0, 4)
    assert cat_boxes([a, b]).shape == (3, 4) and stack_boxes([a, a]).shape == (2, 1, 4)
    assert cat_boxes([a.tensor, b.tensor]).shape == (3, 4)
    with pytest.raises(TypeError):
        HorizontalBoxes.cat([a, a.tensor])


def test_box_type_registry_and_conversion():
    assert get_box_type('hbox') == ('hbox', HorizontalBoxes)
    assert get_box_type('HBOX') == ('hbox', HorizontalBoxes)
    assert get_box_type(HorizontalBoxes) == ('hbox', HorizontalBoxes)
    with pytest.raises(KeyError, match="'rbox'.*hbox"):
        get_box_type('rbox')

    class CornerBoxes(HorizontalBoxes):
        """A test type: the same numbers, registered under another name."""

    register_box('corner_test', CornerBoxes)
    with pytest.raises(KeyError, match='already registered'):
        register_box('corner_test', CornerBoxes)

    @register_box_converter('hbox', 'corner_test')
    def hbox2corner_test(tensor):
        return tensor + 1

    converted = convert_box_type(HorizontalBoxes([[0., 0, 1, 1]]), dst_type='corner_test')
    assert isinstance(converted, CornerBoxes) and converted.tensor.tolist() == [[1, 1, 2, 2]]
    assert convert_box_type(np.zeros((1, 4), np.float32), src_type='hbox',
                            dst_type='corner_test').tolist() == [[1, 1, 1, 1]]
    with pytest.raises(KeyError, match='no converter'):
        convert_box_type(converted, dst_type='hbox')
    assert issubclass(HorizontalBoxes, BaseBoxes)


def test_autocast_box_type_round_trips_arrays():
    class Shift:
        @autocast_box_type()
        def transform(self, results):
            assert isinstance(results['gt_bboxes'], HorizontalBoxes)
            results['gt_bboxes'].translate_((1, 2))
            return results

    out = Shift().transform(dict(gt_bboxes=np.zeros((1, 4), np.float32)))
    assert isinstance(out['gt_bboxes'], np.ndarray) and out['gt_bboxes'].tolist() == [
        [1, 2, 1, 2]]
    as_boxes = Shift().transform(dict(gt_bboxes=HorizontalBoxes(np.zeros((1, 4)))))
    assert isinstance(as_boxes['gt_bboxes'], HorizontalBoxes)
    assert Shift().transform.__name__ == 'transform'
    with pytest.raises(TypeError, match='gt_bboxes'):
        Shift().transform(dict(gt_bboxes=[[0, 0, 1, 1]]))


def test_mmdetection_parameter_names_and_box_objects_in_helpers():
    from detlab.structures.bbox import get_box_wh, scale_boxes
    xyxy = torch.tensor([[10., 20., 30., 60.]])
    assert HorizontalBoxes.xyxy_to_cxcywh(boxes=xyxy).tolist() == [[20, 40, 20, 40]]
    assert HorizontalBoxes.cxcywh_to_xyxy(boxes=torch.tensor([[20., 40., 20., 40.]])).tolist() \
        == xyxy.tolist()
    assert scale_boxes(boxes=xyxy, scale_factor=(2, 0.5)).tolist() == [[20, 10, 60, 30]]
    # Box objects are rescaled in place and returned, as MMDetection does.
    boxes = HorizontalBoxes(xyxy)
    assert scale_boxes(boxes, (2, 0.5)) is boxes and boxes.tensor.tolist() == [[20, 10, 60, 30]]
    widths, heights = get_box_wh(boxes=boxes)
    assert widths.tolist() == [40] and heights.tolist() == [20]
    assert [t.tolist() for t in get_box_wh(xyxy)] == [[20], [40]]
