"""VOC mAP, proposal recall, numpy overlaps and class names on cases worked out by hand."""
import numpy as np
import pytest

from detlab.evaluation import (average_precision, bbox_overlaps, coco_classes, eval_map,
                               eval_recalls, get_classes, print_map_summary, tpfp_default,
                               voc_classes)

# One class. Image 1: gt A (hit by d1 0.9) and a missed gt; d2 (0.8) hits
# nothing. Image 2: gt B (hit by d3 0.7) and a difficult box hit by d4 (0.6).
# Ranked: d1 TP, d2 FP, d3 TP, d4 ignored; 3 counted gts.
# Recall 1/3, 1/3, 2/3, 2/3; precision 1, 1/2, 2/3, 2/3.
DETS = [[np.array([[0, 0, 10, 10, 0.9], [50, 50, 60, 60, 0.8]])],
        [np.array([[20, 20, 30, 30, 0.7], [70, 70, 80, 80, 0.6]])]]
ANNS = [dict(bboxes=np.array([[0, 0, 10, 10], [100, 100, 120, 120]]), labels=np.array([0, 0]),
             bboxes_ignore=np.zeros((0, 4)), labels_ignore=np.zeros(0, int)),
        dict(bboxes=np.array([[20, 20, 30, 30]]), labels=np.array([0]),
             bboxes_ignore=np.array([[70, 70, 80, 80]]), labels_ignore=np.array([0]))]


def test_eval_map_area_and_11points_by_hand():
    # area: envelope precision 1 up to recall 1/3, 2/3 up to 2/3 -> 1/3 + 2/9.
    mean_ap, results = eval_map(DETS, ANNS, iou_thr=0.5, eval_mode='area', logger='silent')
    assert mean_ap == pytest.approx(5 / 9, abs=1e-6)
    assert results[0]['num_gts'] == 3 and results[0]['num_dets'] == 4
    np.testing.assert_allclose(results[0]['recall'], [1 / 3, 1 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_allclose(results[0]['precision'], [1, 1 / 2, 2 / 3, 2 / 3], rtol=1e-6)
    # 11 points: recall >= 0, .1, .2, .3 -> 1; >= .4, .5, .6 -> 2/3; above -> 0.
    mean_ap, _ = eval_map(DETS, ANNS, iou_thr=0.5, eval_mode='11points', logger='silent')
    assert mean_ap == pytest.approx((4 + 3 * 2 / 3) / 11, abs=1e-6)


def test_difficult_box_ignored_not_penalised():
    without_difficult = [dict(ann, bboxes_ignore=np.zeros((0, 4)), labels_ignore=np.zeros(0))
                         for ann in ANNS]
    _, results = eval_map(DETS, without_difficult, logger='silent')
    # d4 now a false positive: precision at the end drops to 2/4.
    assert results[0]['precision'][-1] == pytest.approx(0.5)


def test_average_precision_shapes_and_modes():
    recalls = np.array([[0.5, 1.0], [0.5, 0.5]])
    precisions = np.array([[1.0, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(average_precision(recalls, precisions, 'area'), [0.75, 0.5])
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 0.5])) == pytest.approx(0.75)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="'areas'"):
        average_precision(recalls, precisions, 'areas')


def test_tpfp_duplicates_and_area_ranges():
    dets = np.array([[0, 0, 10, 10, 0.5], [0, 0, 10, 10, 0.9], [0, 0, 40, 40, 0.1]])
    tp, fp = tpfp_default(dets, np.array([[0, 0, 10, 10]]), None, 0.5,
                          area_ranges=[(0, 200), (200, 1e5)])
    # the higher-scoring duplicate wins; the big box is a FP only in the big range
    np.testing.assert_array_equal(tp, [[0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(fp, [[1, 0, 0], [0, 0, 1]])
    tp, fp = tpfp_default(dets, np.zeros((0, 4)), None)
    assert tp.sum() == 0 and fp.sum() == 3


def test_eval_map_scale_ranges_and_no_gt_class():
    dets = [[np.array([[0, 0, 10, 10, 0.9]]), np.zeros((0, 5))]]
    anns = [dict(bboxes=np.array([[0, 0, 10, 10]]), labels=np.array([0]))]
    mean_ap, results = eval_map(dets, anns, scale_ranges=[(0, 8), (8, 32)], logger='silent')
    assert mean_ap == [0.0, 1.0]  # the 10x10 box is in the second range only
    assert results[1]['num_gts'].tolist() == [0, 0]
    with pytest.raises(ValueError, match='2 detection results but 1'):
        eval_map(dets * 2, anns)


def test_print_map_summary_names_classes(capsys):
    _, results = eval_map(DETS, ANNS, logger='silent')
    print_map_summary(0.5, results, dataset=['thing'])
    out = capsys.readouterr().out
    assert '| thing' in out and '| mAP' in out and '0.500' in out


def test_bbox_overlaps_numpy_and_legacy():
    boxes = np.array([[0, 0, 10, 10], [5, 5, 15, 15]], dtype=np.float32)
    ious = bbox_overlaps(boxes, boxes)
    assert ious.dtype == np.float32
    np.testing.assert_allclose(ious, [[1, 25 / 175], [25 / 175, 1]], rtol=1e-6)
    legacy = bbox_overlaps(boxes[:1], boxes[1:], use_legacy_coordinate=True)
    assert legacy[0, 0] == pytest.approx(36 / (121 + 121 - 36))
    np.testing.assert_allclose(bbox_overlaps(boxes[:1], boxes[1:], mode='iof'), [[0.25]])
    assert bbox_overlaps(np.zeros((0, 4)), boxes).shape == (0, 2)


def test_eval_recalls_greedy_one_to_one():
    gts = [np.array([[0, 0, 10, 10], [20, 20, 30, 30]])]
    # Best proposal covers gt 0 exactly; the second overlaps gt 0 (0.5) and gt 1 (0).
    proposals = [np.array([[0, 0, 10, 10, 0.9], [0, 0, 10, 5, 0.8], [20, 20, 30, 25, 0.1]])]
    recalls = eval_recalls(gts, proposals, proposal_nums=[1, 3], iou_thrs=[0.5, 0.9],
                           logger='silent')
    np.testing.assert_allclose(recalls, [[0.5, 0.5], [1.0, 0.5]])


def test_class_names():
    assert len(voc_classes()) == 20 and voc_classes()[0] == 'aeroplane'
    assert get_classes('voc07') == voc_classes()
    assert get_classes('coco') == coco_classes() and len(coco_classes()) == 80
    with pytest.raises(ValueError, match="'cityscapes'.*'pascal_voc'"):
        get_classes('cityscapes')


def test_eval_map_keeps_mmdetections_positional_order():
    # MMDetection's order is (det_results, annotations, scale_ranges, iou_thr, ioa_thr,
    # dataset, ...): the 6th positional argument is the dataset, not ioa_thr.
    mean_ap, _ = eval_map(DETS, ANNS, None, 0.5, None, ['thing'], 'silent')
    assert mean_ap == pytest.approx(eval_map(DETS, ANNS, logger='silent')[0])
    with pytest.raises(AssertionError, match='group-of'):
        eval_map(DETS, ANNS, ioa_thr=0.5, logger='silent')
    with pytest.raises(ValueError, match='group-of'):
        eval_map(DETS, ANNS, use_group_of=True, logger='silent')
