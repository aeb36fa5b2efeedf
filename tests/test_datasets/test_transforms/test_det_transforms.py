"""Resize and RandomFlip keep gt boxes with the image; mmcv's random resizes use detlab's Resize."""
import numpy as np
import pytest

from detlab.datasets.transforms import RandomFlip, Resize
from detlab.registry import TRANSFORMS


def make_results(height=40, width=60, boxes=((10, 5, 30, 25),)):
    img = np.zeros((height, width, 3), np.uint8)
    return dict(img=img, img_shape=(height, width), ori_shape=(height, width),
                gt_bboxes=np.array(boxes, np.float32).reshape(-1, 4))


def test_resize_keep_ratio_fits_inside_scale():
    results = Resize(scale=(120, 100), keep_ratio=True)(make_results())
    # 60x40 -> factor min(120/60, 100/40) = 2
    assert results['img'].shape[:2] == results['img_shape'] == (80, 120)
    assert results['scale_factor'] == (2.0, 2.0) and results['keep_ratio'] is True
    assert results['gt_bboxes'].dtype == np.float32
    assert results['gt_bboxes'].tolist() == [[20, 10, 60, 50]]


def test_resize_exact_scale_and_factor():
    results = Resize(scale=(30, 80))(make_results())
    assert results['img_shape'] == (80, 30)
    assert results['scale_factor'] == (0.5, 2.0)
    assert results['gt_bboxes'].tolist() == [[5, 10, 15, 50]]
    by_factor = Resize(scale_factor=0.5)(make_results())
    assert by_factor['img_shape'] == (20, 30)


def test_resize_clips_boxes_unless_told_not_to():
    boxes = ((50, 30, 70, 50),)  # runs past the 60x40 image
    clipped = Resize(scale=(60, 40))(make_results(boxes=boxes))
    assert clipped['gt_bboxes'].tolist() == [[50, 30, 60, 40]]
    free = Resize(scale=(60, 40), clip_object_border=False)(make_results(boxes=boxes))
    assert free['gt_bboxes'].tolist() == [[50, 30, 70, 50]]


def test_resize_without_boxes_and_with_empty_boxes():
    results = make_results()
    del results['gt_bboxes']
    assert Resize(scale=(30, 20))(results)['img_shape'] == (20, 30)
    empty = Resize(scale=(30, 20))(make_results(boxes=()))
    assert empty['gt_bboxes'].shape == (0, 4)


@pytest.mark.parametrize('kwargs, error', [
    (dict(), 'scale'),
    (dict(scale=(10, 10), backend='skimage'), 'backend'),
    (dict(scale=(10, 10), interpolation='cubic'), 'interpolation'),
])
def test_resize_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        Resize(**kwargs)


@pytest.mark.parametrize('direction, expected', [
    ('horizontal', [30, 5, 50, 25]),
    ('vertical', [10, 15, 30, 35]),
    ('diagonal', [30, 15, 50, 35]),
])
def test_flip_directions(direction, expected):
    results = RandomFlip(prob=1, direction=direction)(make_results())
    assert results['flip'] is True and results['flip_direction'] == direction
    assert results['gt_bboxes'].dtype == np.float32
    assert results['gt_bboxes'].tolist() == [expected]


def test_flip_prob_zero_and_lists():
    results = RandomFlip(prob=0.0)(make_results())
    assert results['flip'] is False and results['flip_direction'] is None
    assert results['gt_bboxes'].tolist() == [[10, 5, 30, 25]]
    chosen = RandomFlip(prob=[0.0, 1.0], direction=['horizontal', 'vertical'])(make_results())
    assert chosen['flip_direction'] == 'vertical'
    with pytest.raises(ValueError, match='sideways'):
        RandomFlip(prob=0.5, direction='sideways')
    with pytest.raises(ValueError, match='prob'):
        RandomFlip(prob=1.5)
    with pytest.raises(ValueError, match='2 probabilities'):
        RandomFlip(prob=[0.5, 0.5], direction=['horizontal'])


def test_mmcv_random_resizes_drive_detlab_resize():
    random_resize = TRANSFORMS.build(
        dict(type='RandomResize', scale=(120, 80), ratio_range=(0.5, 1.0), keep_ratio=True))
    assert isinstance(random_resize.resize, Resize)
    results = random_resize(make_results())
    height, width = results['img_shape']
    assert width <= 120 and height <= 80
    w_scale, h_scale = results['scale_factor']
    assert np.allclose(results['gt_bboxes'], [[10 * w_scale, 5 * h_scale, 30 * w_scale,
                                               25 * h_scale]])
    choice = TRANSFORMS.build(dict(type='RandomChoiceResize', scales=[(90, 60)], keep_ratio=True))
    assert isinstance(choice.resize, Resize)
    assert choice(make_results())['img_shape'] == (60, 90)


def test_resize_and_flip_record_homography_as_mmdetection():
    """Reference values measured with MMDetection 3.3's Resize/RandomFlip on the same input."""
    from detlab.structures.bbox import HorizontalBoxes
    results = make_results()
    results['gt_bboxes'] = HorizontalBoxes(results['gt_bboxes'])
    steps = [
        (dict(type='Resize', scale=(100, 90), keep_ratio=True),
         [[16.666666, 8.375, 50.0, 41.875]],
         [[1.6666666, 0, 0], [0, 1.675, 0], [0, 0, 1]]),
        (dict(type='RandomFlip', prob=1.0, direction='diagonal'),
         [[50.0, 25.125, 83.333336, 58.625]],
         [[-1.6666666, 0, 100], [0, -1.675, 67], [0, 0, 1]]),
        (dict(type='Resize', scale_factor=0.5),
         [[25.0, 12.75, 41.666668, 29.75]],
         [[-0.8333333, 0, 50], [0, -0.85, 34], [0, 0, 1]]),
        (dict(type='RandomFlip', prob=1.0, direction='horizontal'),
         [[8.333332, 12.75, 25.0, 29.75]],
         [[0.8333333, 0, 0], [0, -0.85, 34], [0, 0, 1]]),
        # no flip: nothing recorded
        (dict(type='RandomFlip', prob=0.0),
         [[8.333332, 12.75, 25.0, 29.75]],
         [[0.8333333, 0, 0], [0, -0.85, 34], [0, 0, 1]]),
    ]
    for cfg, boxes, matrix in steps:
        results = TRANSFORMS.build(cfg)(results)
        assert np.allclose(results['gt_bboxes'].tensor.numpy(), boxes, atol=1e-4), cfg
        assert results['homography_matrix'].dtype == np.float32
        assert np.allclose(results['homography_matrix'], matrix, atol=1e-5), cfg
    assert results['img_shape'] == (34, 50)
    assert np.allclose(results['scale_factor'], (0.5, 34 / 67))
    # The matrix maps the original box's corners onto the current box.
    corners = np.array([[10, 5, 1], [30, 25, 1]], np.float32) @ results['homography_matrix'].T
    xs, ys = corners[:, 0], corners[:, 1]
    assert np.allclose([xs.min(), ys.min(), xs.max(), ys.max()],
                       results['gt_bboxes'].tensor[0].numpy(), atol=1e-4)


def test_resize_and_flip_move_masks():
    from detlab.structures.mask import BitmapMasks, PolygonMasks
    results = make_results()
    bitmap = np.zeros((1, 40, 60), np.uint8)
    bitmap[0, 5:25, 10:30] = 1
    results['gt_masks'] = BitmapMasks(bitmap, 40, 60)
    results = Resize(scale=(120, 100), keep_ratio=True)(results)
    assert results['gt_masks'].masks.shape == (1, 80, 120)
    results = RandomFlip(prob=1.0, direction='horizontal')(results)
    assert results['gt_masks'].get_bboxes('hbox').tensor.tolist() == [[60, 10, 100, 50]]
    assert results['gt_bboxes'].tolist() == [[60, 10, 100, 50]]
    polygons = make_results()
    polygons['gt_masks'] = PolygonMasks([[np.array([10., 5, 30, 5, 30, 25, 10, 25])]], 40, 60)
    polygons = Resize(scale=(30, 80))(polygons)
    assert (polygons['gt_masks'].height, polygons['gt_masks'].width) == (80, 30)
    assert polygons['gt_masks'].get_bboxes('hbox').tensor.tolist() == [[5, 10, 15, 50]]


def test_pad_pads_masks_and_keeps_boxes():
    from detlab.structures.mask import BitmapMasks
    results = make_results()
    results['gt_masks'] = BitmapMasks(np.ones((1, 40, 60), np.uint8), 40, 60)
    padded = TRANSFORMS.build(dict(type='Pad', size=(64, 48), pad_val=dict(img=7, masks=0)))(
        results)
    assert padded['img'].shape == (48, 64, 3) and padded['img'][47, 63, 0] == 7
    assert padded['pad_shape'][:2] == (48, 64)
    assert padded['gt_masks'].masks.shape == (1, 48, 64)
    padded_masks = padded['gt_masks'].masks
    assert padded_masks[0, 40:].sum() == 0 and padded_masks[0, :40, :60].all()
    assert padded['gt_bboxes'].tolist() == [[10, 5, 30, 25]]


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
@pytest.mark.parametrize('dtype, shape', [(np.uint8, (6, 9, 3)), (np.float32, (6, 9, 3)),
                                          (np.uint8, (6, 9)), (np.int64, (6, 9, 3)),
                                          (np.uint8, (6, 9, 5))])
def test_flip_image_matches_mmcv_and_is_contiguous(direction, dtype, shape):
    import mmcv

    from detlab.datasets.transforms.transforms import flip_image
    img = np.arange(np.prod(shape)).reshape(shape).astype(dtype)
    flipped = flip_image(img, direction)
    assert np.array_equal(flipped, mmcv.imflip(img, direction=direction))
    assert flipped.dtype == img.dtype
