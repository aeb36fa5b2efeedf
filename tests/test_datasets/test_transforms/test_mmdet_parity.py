"""Seeded draws match MMDetection 3.3: the same numpy seed gives the same crops, warps and mixes.

The expected shapes and boxes were measured by running MMDetection 3.3.0's
transforms on the same inputs (two boxes (20, 15, 60, 45), (90, 50, 140, 100)
in a 120x160 image, shifted by (3i, 2i) for the i-th sample of a cached
mixer or of ``mix_results``) right after ``np.random.seed(7)``.
"""
import numpy as np
import pytest

from detlab.registry import TRANSFORMS
from known_image import BOXES, make_sample


def shifted(i):
    return make_sample(boxes=tuple((x1 + 3 * i, y1 + 2 * i, x2 + 3 * i, y2 + 2 * i)
                                   for x1, y1, x2, y2 in BOXES))


CASES = [
    (dict(type='RandomCrop', crop_size=(100, 80), allow_negative_crop=True), (80, 100),
     [[0, 11, 35, 41], [65, 46, 100, 80]]),
    (dict(type='RandomCrop', crop_size=(0.6, 0.6), crop_type='relative_range',
          allow_negative_crop=True), (76, 146), [[17, 12, 57, 42], [87, 47, 137, 76]]),
    (dict(type='MinIoURandomCrop', min_ious=(0.1, 0.3), min_crop_size=0.3), (58, 83),
     [[20, 14, 70, 58]]),
    (dict(type='Expand', mean=(0, 0, 0), ratio_range=(1.5, 3), prob=1.0), (320, 427),
     [[137, 159, 177, 189], [207, 194, 257, 244]]),
    (dict(type='RandomAffine', max_rotate_degree=20, scaling_ratio_range=(0.7, 1.3),
          max_shear_degree=5), (120, 160),
     [[42.640, 0.070, 97.329, 45.860], [132.598, 15.889, 160.0, 87.258]]),
    (dict(type='Mosaic', img_scale=(120, 100)), (200, 240),
     [[48.0, 14.25, 78.0, 36.75], [100.5, 40.5, 138.0, 78.0], [170.25, 15.75, 200.25, 38.25],
      [222.75, 42.0, 240.0, 79.5], [52.5, 107.25, 82.5, 129.75], [105.0, 133.5, 142.5, 171.0],
      [174.75, 108.75, 204.75, 131.25], [227.25, 135.0, 240.0, 172.5]]),
    (dict(type='MixUp', img_scale=(160, 120)), (120, 160),
     [[20, 15, 60, 45], [90, 50, 140, 100], [55.693, 9.797, 78.745, 27.086],
      [9.588, 29.968, 38.403, 58.783]]),
    (dict(type='CachedMosaic', img_scale=(120, 100), max_cached_images=6), (200, 240),
     [[48.5, 47.25, 78.5, 69.75], [101.0, 73.5, 138.5, 111.0], [166.25, 45.75, 196.25, 68.25],
      [218.75, 72.0, 240.0, 109.5], [35.0, 128.25, 65.0, 150.75], [87.5, 154.5, 125.0, 192.0],
      [161.75, 132.75, 191.75, 155.25], [214.25, 159.0, 240.0, 196.5]]),
    (dict(type='CachedMixUp', img_scale=(160, 120), max_cached_images=4), (120, 160),
     [[38, 27, 78, 57], [108, 62, 158, 112], [94.8, 18.921, 136.739, 50.376],
      [10.92, 55.618, 63.345, 108.043]]),
]


@pytest.mark.parametrize('cfg, shape, boxes', CASES, ids=[c[0]['type'] for c in CASES])
def test_seeded_draws_match_mmdetection(cfg, shape, boxes):
    np.random.seed(7)
    transform = TRANSFORMS.build(dict(cfg))
    cached = cfg['type'].startswith('Cached')
    results = None
    for i in range(7 if cached else 1):
        results = shifted(i)
        if cfg['type'] == 'Mosaic':
            results['mix_results'] = [shifted(j) for j in (1, 2, 3)]
        elif cfg['type'] == 'MixUp':
            results['mix_results'] = [shifted(1)]
        results = transform(results)
    assert results['img_shape'] == shape
    assert np.allclose(results['gt_bboxes'].numpy(), boxes, atol=1e-3)
