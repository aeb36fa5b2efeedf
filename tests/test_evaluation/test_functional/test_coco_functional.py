"""COCO conversion and AP math on tiny hand-built ground truths."""
import json
import math
import os
import pickle

import numpy as np
import pytest

from detlab.evaluation.functional import (COCO_IOU_THRS, coco_from_dict, detections_from_results,
                                          dump_atomic,
                                          evaluate_bbox, format_table, gt_to_coco_dict,
                                          load_coco, load_detections, per_class_ap,
                                          per_class_table, results_to_coco_json, stats_to_dict,
                                          xyxy_to_xywh)

# Gapped category ids, as in real COCO files; 'bird' has no ground truth.
CATEGORIES = [dict(id=1, name='cat'), dict(id=3, name='dog'), dict(id=7, name='bird')]
CAT_IDS = [1, 3, 7]
# Image 1: a medium cat (40x40) and a small dog (30x30); image 2: a small cat.
GT_BOXES = {1: [([10, 10, 50, 50], 0), ([60, 60, 90, 90], 1)], 2: [([0, 0, 20, 20], 0)]}


def _gt_coco():
    gts = [dict(img_id=img_id, width=100, height=100,
                bboxes=np.array([b for b, _ in boxes], dtype=float),
                labels=np.array([lab for _, lab in boxes]),
                ignore_flags=np.zeros(len(boxes)))
           for img_id, boxes in GT_BOXES.items()]
    dataset = gt_to_coco_dict(gts, ['cat', 'dog', 'bird'])
    for ann in dataset['annotations']:  # move labels onto the gapped ids
        ann['category_id'] = CAT_IDS[ann['category_id']]
    dataset['categories'] = CATEGORIES
    return coco_from_dict(dataset)


def _perfect_predictions(keep_labels=(0, 1)):
    results = []
    for img_id, boxes in GT_BOXES.items():
        kept = [(b, lab) for b, lab in boxes if lab in keep_labels]
        results.append(dict(img_id=img_id, bboxes=np.array([b for b, _ in kept], float),
                            scores=np.full(len(kept), 0.9),
                            labels=np.array([lab for _, lab in kept], dtype=int)))
    return results


def _evaluate(results, backend='pycocotools', **kwargs):
    result = evaluate_bbox(_gt_coco(), detections_from_results(results, CAT_IDS), CAT_IDS,
                           backend=backend, **kwargs)
    return result, result.summary


def test_xyxy_to_xywh():
    out = xyxy_to_xywh(np.array([[1, 2, 4, 8]]))
    np.testing.assert_allclose(out, [[1, 2, 3, 6]])
    assert xyxy_to_xywh(np.zeros((0, 4))).shape == (0, 4)


def test_results_to_coco_json_maps_labels_to_gapped_category_ids():
    results = [dict(img_id=5, bboxes=np.array([[0, 0, 10, 20], [1, 1, 2, 2]]),
                    scores=np.array([0.5, 0.25]), labels=np.array([2, 0]))]
    out = results_to_coco_json(results, CAT_IDS)
    assert out == [dict(image_id=5, bbox=[0, 0, 10, 20], score=0.5, category_id=7),
                   dict(image_id=5, bbox=[1, 1, 1, 1], score=0.25, category_id=1)]
    assert results_to_coco_json([dict(img_id=1, bboxes=np.zeros((0, 4)), scores=np.zeros(0),
                                      labels=np.zeros(0, int))], CAT_IDS) == []


def test_results_to_coco_json_rejects_label_without_category():
    results = [dict(img_id=5, bboxes=np.zeros((1, 4)), scores=np.ones(1), labels=np.array([3]))]
    with pytest.raises(ValueError, match='valid labels: 0..2'):
        results_to_coco_json(results, CAT_IDS)


def test_gt_to_coco_dict_ids_areas_and_crowd():
    gts = [dict(img_id=9, width=50, height=40, bboxes=np.array([[0, 0, 10, 5], [1, 1, 3, 3]]),
                labels=np.array([1, 0]), ignore_flags=np.array([0, 1]))]
    dataset = gt_to_coco_dict(gts, ['a', 'b'])
    assert [a['id'] for a in dataset['annotations']] == [1, 2]  # pycocotools needs ids >= 1
    assert dataset['annotations'][0]['area'] == 50
    assert dataset['annotations'][0]['category_id'] == 1
    assert dataset['annotations'][1]['iscrowd'] == 1
    assert dataset['images'] == [dict(id=9, width=50, height=40, file_name='')]
    assert dataset['categories'] == [dict(id=0, name='a'), dict(id=1, name='b')]


def test_perfect_predictions_give_map_one():
    coco_eval, summary = _evaluate(_perfect_predictions())
    stats = stats_to_dict(coco_eval.stats)
    assert stats['bbox_mAP'] == 1.0 and stats['bbox_mAP_50'] == 1.0
    assert stats['bbox_mAP_s'] == 1.0 and stats['bbox_mAP_m'] == 1.0
    assert stats['bbox_mAP_l'] == -1.0  # no large ground truth
    assert 'Average Precision' in summary


def test_shifted_box_gives_known_lower_map():
    # Image 2's cat box shrinks to IoU 290/400 = 0.725: a hit at the 5
    # thresholds 0.50..0.70, a miss at 0.75..0.95. Its lower score ranks it
    # after image 1's hit, so at the high thresholds the cat's precision is 1
    # up to recall 0.5: AP = 51/101 (COCO samples recall at 0, 0.01, .., 1).
    results = _perfect_predictions()
    results[1]['bboxes'] = np.array([[0, 0, 20, 20 * 0.725]])
    results[1]['scores'] = np.array([0.8])
    coco_eval, _ = _evaluate(results, iou_thrs=None)
    stats = stats_to_dict(coco_eval.stats)
    half_recall_ap = 51 / 101
    cat_ap = (5 * 1.0 + 5 * half_recall_ap) / 10
    dog_ap = 1.0
    assert stats['bbox_mAP'] == round((cat_ap + dog_ap) / 2, 3)
    assert stats['bbox_mAP_50'] == 1.0
    assert stats['bbox_mAP_75'] == round((half_recall_ap + dog_ap) / 2, 3)


def test_no_predictions_give_zero():
    coco_eval, _ = _evaluate([])
    assert stats_to_dict(coco_eval.stats)['bbox_mAP'] == 0.0


def test_class_without_predictions_and_class_without_gt():
    coco_eval, _ = _evaluate(_perfect_predictions(keep_labels=(0, )))
    ap = per_class_ap(coco_eval.eval['precision'], COCO_IOU_THRS)
    assert ap.shape == (3, 6)
    np.testing.assert_allclose(ap[0, :3], 1.0)   # cat found
    np.testing.assert_allclose(ap[1, :3], 0.0)   # dog missed
    assert np.isnan(ap[2]).all()                 # bird: no gt
    assert stats_to_dict(coco_eval.stats)['bbox_mAP'] == 0.5
    table = per_class_table(['cat', 'dog', 'bird'], ap)
    lines = table.splitlines()
    assert lines[1].split('|')[1].strip() == 'category'
    cells = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
             for line in lines[3:-1]}
    assert cells['cat'][:3] == ['1.0', '1.0', '1.0']
    assert cells['dog'][0] == '0.0'
    assert cells['bird'] == ['nan'] * 6


def test_per_class_ap_ignores_invalid_entries_and_missing_thresholds():
    # (T=2, R=2, K=2, A=4, M=1): class 0 has one undefined entry (-1).
    precisions = np.full((2, 2, 2, 4, 1), 0.5)
    precisions[0, 0, 0, 0, 0] = -1
    precisions[1, :, 0, 0, 0] = 1.0
    ap = per_class_ap(precisions, iou_thrs=[0.5, 0.6])
    assert ap[0, 0] == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert ap[0, 1] == pytest.approx(0.5)  # the remaining IoU=0.5 entry
    assert np.isnan(ap[0, 2])  # 0.75 was not evaluated
    assert ap[1, 0] == pytest.approx(0.5)


def test_stats_to_dict_items_and_errors():
    stats = np.arange(12) / 100.0
    out = stats_to_dict(stats, ['AR@100', 'mAP'], prefix='bbox_')
    assert out == {'bbox_AR@100': 0.06, 'bbox_mAP': 0.0}
    assert list(stats_to_dict(np.full(12, 0.12345))) == [
        'bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l']
    assert stats_to_dict(np.full(12, 0.12345))['bbox_mAP'] == 0.123
    with pytest.raises(KeyError, match='valid items'):
        stats_to_dict(stats, ['mAP_xl'])


def test_evaluate_bbox_rejects_bad_max_dets():
    with pytest.raises(ValueError, match='3 ascending'):
        _evaluate([], max_dets=(100, 10))


def test_load_detections_rejects_unknown_images():
    coco_gt = _gt_coco()
    with pytest.raises(ValueError, match=r'\[42\]'):
        load_detections(coco_gt, [dict(image_id=42, bbox=[0, 0, 1, 1], score=1.0,
                                       category_id=1)])


def test_format_table_aligns_columns():
    table = format_table(['a', 'long header'], [['xyz', 1], ['q', 22]])
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[0] == lines[2] == lines[-1] == '+-----+-------------+'
    assert lines[3] == '| xyz | 1           |'


def test_dump_atomic_and_load_coco(tmp_path):
    path = tmp_path / 'sub' / 'gt.json'
    dataset = dict(images=[dict(id=1, width=4, height=4)], annotations=[],
                   categories=CATEGORIES)
    dump_atomic(dataset, str(path))
    assert json.loads(path.read_text()) == dataset
    assert os.listdir(path.parent) == ['gt.json']  # no temp file left behind
    assert load_coco(str(path)).getCatIds() == CAT_IDS
    pkl_path = tmp_path / 'sub' / 'results.pkl'
    dump_atomic([dict(a=1)], str(pkl_path))  # format follows the suffix
    assert pickle.loads(pkl_path.read_bytes()) == [dict(a=1)]
    with pytest.raises(FileNotFoundError, match='missing.json'):
        load_coco(str(tmp_path / 'missing.json'))


def test_mean_of_nan_safe():
    assert math.isnan(per_class_ap(np.full((1, 1, 1, 4, 1), -1.0), [0.5])[0, 0])
