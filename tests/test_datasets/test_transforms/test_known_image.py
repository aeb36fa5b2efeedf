"""Every geometric transform keeps boxes (and masks) on the objects drawn at known places."""
import copy

import numpy as np
import pytest

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import HorizontalBoxes
from known_image import BOXES, assert_boxes_fit_objects, assert_masks_follow_boxes, make_sample

#: Configs that always change the geometry; fills are black so they never look like objects.
GEOMETRIC = [
    dict(type='Resize', scale=(200, 90), keep_ratio=True),
    dict(type='Resize', scale=(100, 150), keep_ratio=False),
    dict(type='RandomFlip', prob=1.0, direction='horizontal'),
    dict(type='RandomFlip', prob=1.0, direction='vertical'),
    dict(type='RandomFlip', prob=1.0, direction='diagonal'),
    dict(type='RandomResize', scale=(320, 240), ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='RandomChoiceResize', scales=[(80, 60), (240, 180)], keep_ratio=True),
    dict(type='Pad', size_divisor=32),
    dict(type='Pad', size=(200, 150)),
    dict(type='RandomCrop', crop_size=(100, 80), allow_negative_crop=True),
    dict(type='RandomCrop', crop_size=(0.6, 0.6), crop_type='relative_range',
         allow_negative_crop=True),
    dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3), min_crop_size=0.3),
    dict(type='Expand', mean=(0, 0, 0), ratio_range=(1.5, 3), prob=1.0),
    dict(type='RandomAffine', max_rotate_degree=20, scaling_ratio_range=(0.7, 1.3),
         max_shear_degree=5, border_val=(0, 0, 0)),
    dict(type='RandomAffine', max_rotate_degree=0, max_shear_degree=0, border=(-20, -10),
         border_val=(0, 0, 0)),
    dict(type='CutOut', n_holes=(1, 3), cutout_ratio=[(0.1, 0.1), (0.2, 0.1)]),
    dict(type='RandomErasing', n_patches=(1, 3), ratio=(0.05, 0.2), img_border_value=0),
    dict(type='CachedMosaic', img_scale=(120, 100), pad_val=0, max_cached_images=6),
    dict(type='CachedMixUp', img_scale=(160, 120), pad_val=0, max_cached_images=4),
]
IDS = [f"{cfg['type']}-{i}" for i, cfg in enumerate(GEOMETRIC)]
#: CutOut and RandomErasing paint over objects; their boxes are checked separately.
OCCLUDING = ('CutOut', 'RandomErasing')


def run(cfg, sample_fn, seed):
    np.random.seed(seed)
    transform = TRANSFORMS.build(copy.deepcopy(cfg))
    results = None
    # Cached mixers need a few samples in their cache before they mix.
    for i in range(7 if cfg['type'].startswith('Cached') else 1):
        results = transform(sample_fn(i))
    return results


def shifted_boxes(i):
    """Objects at slightly different places per sample, so cached mixes differ."""
    return tuple((x1 + 3 * i, y1 + 2 * i, x2 + 3 * i, y2 + 2 * i) for x1, y1, x2, y2 in BOXES)


@pytest.mark.parametrize('cfg', GEOMETRIC, ids=IDS)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_boxes_stay_on_their_objects(cfg, seed):
    results = run(cfg, lambda i: make_sample(boxes=shifted_boxes(i)), seed)
    assert results is not None
    assert isinstance(results['gt_bboxes'], HorizontalBoxes)
    if cfg['type'] in OCCLUDING:
        assert len(results['gt_bboxes']) <= len(BOXES)
    else:
        assert_boxes_fit_objects(results, strays_allowed=cfg['type'] == 'MinIoURandomCrop')


@pytest.mark.parametrize('cfg', GEOMETRIC, ids=IDS)
@pytest.mark.parametrize('poly2mask', [True, False])
def test_masks_move_with_boxes(cfg, poly2mask):
    if cfg['type'] == 'RandomErasing' and not poly2mask:
        pytest.skip('RandomErasing erases bitmap masks only')
    results = run(cfg, lambda i: make_sample(boxes=shifted_boxes(i), with_mask=True,
                                             poly2mask=poly2mask), seed=3)
    assert results is not None
    if cfg['type'] != 'RandomErasing':
        assert_masks_follow_boxes(results)
    else:
        assert len(results['gt_masks']) == len(results['gt_bboxes'])


@pytest.mark.parametrize('cfg', GEOMETRIC, ids=IDS)
def test_empty_annotations(cfg):
    results = run(cfg, lambda i: make_sample(boxes=()), seed=0)
    if cfg['type'] == 'RandomCrop' and not cfg.get('allow_negative_crop'):
        assert results is None
        return
    assert results is not None
    assert results['gt_bboxes'].shape == (0, 4)
    assert results['gt_bboxes_labels'].shape == (0,)
    assert results['img'].shape[:2] == tuple(results['img_shape'])


@pytest.mark.parametrize('cfg', [c for c in GEOMETRIC if c['type'] not in OCCLUDING][:9])
def test_numpy_boxes_stay_numpy(cfg):
    """With LoadAnnotations(box_type=None) boxes stay np.ndarray and are moved the same way."""
    sample = make_sample()
    sample['gt_bboxes'] = sample['gt_bboxes'].numpy()
    np.random.seed(0)
    results = TRANSFORMS.build(copy.deepcopy(cfg))(sample)
    assert isinstance(results['gt_bboxes'], np.ndarray)
    assert results['gt_bboxes'].dtype == np.float32
    results['gt_bboxes'] = HorizontalBoxes(results['gt_bboxes'])
    assert_boxes_fit_objects(results)
