"""The fast COCO backend gives pycocotools' COCOeval numbers, quirks included.

Each case runs pycocotools' COCOeval directly and compares every entry of
``stats``, ``precision``, ``recall`` and ``scores`` and the summary text.
"""
import contextlib
import io

import numpy as np
import pytest
from pycocotools.cocoeval import COCOeval

from detlab.evaluation.functional import (DetectionArrays, coco_from_dict, evaluate_bbox,
                                          fast_coco_eval, load_detections)
from evaluation_cases import generated_case


def reference(coco_gt, dets, cat_ids, iou_thrs=None, max_dets=(100, 300, 1000),
              use_cats=True, img_ids=None):
    """pycocotools' COCOeval, run directly."""
    coco_eval = COCOeval(coco_gt, load_detections(coco_gt, [dict(d) for d in dets]), 'bbox')
    coco_eval.params.catIds = list(cat_ids)
    coco_eval.params.imgIds = list(coco_gt.getImgIds() if img_ids is None else img_ids)
    coco_eval.params.maxDets = list(max_dets)
    if iou_thrs is not None:
        coco_eval.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
    coco_eval.params.useCats = int(use_cats)
    text = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
    with contextlib.redirect_stdout(text):
        coco_eval.summarize()
    return coco_eval, text.getvalue()


def assert_same(coco_eval, text, fast):
    np.testing.assert_allclose(fast.stats, coco_eval.stats, rtol=0, atol=1e-12)
    for key in ('precision', 'recall', 'scores'):
        np.testing.assert_allclose(fast.eval[key], coco_eval.eval[key], rtol=0, atol=1e-12)
    assert fast.summary == text


OPTIONS = [dict(), dict(max_dets=(1, 10, 20)), dict(max_dets=(1, 2, 3)),
           dict(iou_thrs=[0.3, 0.5, 0.75]), dict(iou_thrs=[0.6]), dict(use_cats=False)]


@pytest.mark.parametrize('seed', range(6))
def test_matches_pycocotools_on_generated_data(seed):
    # Seeds vary score ties (stable ordering), annotation id 0 (counts as no
    # match in pycocotools), a category subset in unsorted order, image subsets.
    coco_gt, dets, cat_ids = generated_case(seed, score_ties=seed % 2 == 0,
                                            first_ann_id=0 if seed % 3 == 0 else 1)
    cat_ids = cat_ids[:3] if seed % 2 else cat_ids
    arrays = DetectionArrays.from_coco_json(dets)
    for options in OPTIONS + [dict(img_ids=coco_gt.getImgIds()[::2])]:
        assert_same(*reference(coco_gt, dets, cat_ids, **options),
                    fast_coco_eval(coco_gt, arrays, cat_ids, **options))


def test_crowd_heavy_and_crowded_images():
    coco_gt, dets, cat_ids = generated_case(11, num_images=6, num_cats=2, crowd_frac=0.5,
                                            noise_dets=150)
    arrays = DetectionArrays.from_coco_json(dets)
    for options in (dict(), dict(max_dets=(5, 10, 50))):
        assert_same(*reference(coco_gt, dets, cat_ids, **options),
                    fast_coco_eval(coco_gt, arrays, cat_ids, **options))


def test_no_detections_and_no_ground_truth():
    coco_gt, dets, cat_ids = generated_case(3, num_images=4)
    empty = DetectionArrays.from_coco_json([])
    result = evaluate_bbox(coco_gt, empty, cat_ids, backend='fast')
    reference_result = evaluate_bbox(coco_gt, empty, cat_ids, backend='pycocotools')
    np.testing.assert_array_equal(result.stats, reference_result.stats)
    no_gt = coco_from_dict(dict(images=coco_gt.dataset['images'], annotations=[],
                                categories=coco_gt.dataset['categories']))
    arrays = DetectionArrays.from_coco_json(dets)
    assert_same(*reference(no_gt, dets, cat_ids), fast_coco_eval(no_gt, arrays, cat_ids))
    assert (fast_coco_eval(no_gt, arrays, cat_ids).stats == -1).all()


def test_backends_agree_through_evaluate_bbox_and_reject_unknown():
    coco_gt, dets, cat_ids = generated_case(5)
    arrays = DetectionArrays.from_coco_json(dets)
    slow = evaluate_bbox(coco_gt, arrays, cat_ids, backend='pycocotools')
    fast = evaluate_bbox(coco_gt, arrays, cat_ids, backend='fast')
    np.testing.assert_allclose(fast.stats, slow.stats, rtol=0, atol=1e-12)
    assert 0 < fast.stats[0] < 1
    with pytest.raises(ValueError, match="'faster'.*'pycocotools', 'fast'"):
        evaluate_bbox(coco_gt, arrays, cat_ids, backend='faster')
    bad = DetectionArrays.from_coco_json([dict(dets[0], image_id=999)])
    with pytest.raises(ValueError, match=r'\[999\]'):
        evaluate_bbox(coco_gt, bad, cat_ids, backend='fast')
