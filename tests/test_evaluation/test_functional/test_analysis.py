"""Confusion matrix, PR curves and best-F1 points on cases worked out by hand; PNG plots."""
import numpy as np
import pytest

from detlab.evaluation.functional import PRCurve, best_f1, confusion_matrix, pr_curves
from detlab.evaluation.plots import normalize_rows, plot_confusion_matrix, plot_pr_curves

# Classes a=0, b=1. gt: g0 a at (0, 0), g1 b at (20, 20), g2 a at (50, 50).
GT = dict(bboxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]]),
          labels=np.array([0, 1, 0]))
# p0 a on g0 (0.9); p1 a on g1 (0.8, wrong class); p2 b on nothing (0.7);
# p3 b on g2 (0.1, below the 0.3 score threshold of the matrix).
PRED = dict(bboxes=np.array([[0, 0, 10, 10], [20, 20, 30, 30], [80, 80, 90, 90],
                             [50, 50, 60, 60]]),
            scores=np.array([0.9, 0.8, 0.7, 0.1]), labels=np.array([0, 0, 1, 1]))


def test_confusion_matrix_by_hand():
    matrix = confusion_matrix([GT], [PRED], num_classes=2, score_thr=0.3, tp_iou_thr=0.5)
    # rows: gt a, gt b, background; columns: predicted a, predicted b, background
    np.testing.assert_array_equal(matrix, [[1, 0, 1],   # g0 found; g2 missed
                                           [1, 0, 1],   # g1 taken for a; g1 missed as b
                                           [0, 1, 0]])  # p2 on background
    all_scores = confusion_matrix([GT], [PRED], num_classes=2, score_thr=0.0)
    assert all_scores[0, 1] == 1 and all_scores[0, 2] == 1  # p3 now confuses g2 as b


def test_confusion_matrix_empty_cases():
    empty_pred = dict(bboxes=np.zeros((0, 4)), scores=np.zeros(0), labels=np.zeros(0, int))
    empty_gt = dict(bboxes=np.zeros((0, 4)), labels=np.zeros(0, int))
    np.testing.assert_array_equal(confusion_matrix([GT], [empty_pred], 2),
                                  [[0, 0, 2], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix([empty_gt], [PRED], 2, score_thr=0.3),
                                  [[0, 0, 0], [0, 0, 0], [2, 1, 0]])
    assert confusion_matrix([], [], 3).shape == (4, 4)
    with pytest.raises(ValueError, match='1 ground truths but 2'):
        confusion_matrix([GT], [PRED, PRED], 2)


def test_pr_curves_and_best_f1_by_hand():
    curve_a, curve_b = pr_curves([GT], [PRED], num_classes=2, iou_thr=0.5)
    # a: p0 TP, p1 FP over 2 gts.
    np.testing.assert_allclose(curve_a.scores, [0.9, 0.8])
    np.testing.assert_allclose(curve_a.precision, [1.0, 0.5])
    np.testing.assert_allclose(curve_a.recall, [0.5, 0.5])
    point = best_f1(curve_a)
    assert (point.precision, point.recall, point.score_thr) == (1.0, 0.5, 0.9)
    assert point.f1 == pytest.approx(2 / 3)
    # b: p2 and p3 both miss (p3 sits on an 'a' box): no true positive.
    assert curve_b.num_gts == 1 and curve_b.precision.tolist() == [0.0, 0.0]
    assert best_f1(curve_b).f1 == 0.0 and best_f1(curve_b).score_thr == 1.0


def test_best_f1_keeps_tied_scores_together_and_ignored_boxes():
    # The first two detections tie at 0.9: no threshold keeps one without the other.
    curve = PRCurve(scores=np.array([0.9, 0.9, 0.5]), precision=np.array([1.0, 0.5, 2 / 3]),
                    recall=np.array([0.5, 0.5, 1.0]), num_gts=2)
    point = best_f1(curve)
    assert point.score_thr == 0.5 and point.f1 == pytest.approx(0.8)
    gt = dict(GT, ignore_flags=np.array([0, 0, 1]))  # g2 ignored: p3 would neither count
    curve_a, _ = pr_curves([gt], [PRED], num_classes=2)
    assert curve_a.num_gts == 1 and curve_a.recall[-1] == 1.0


def test_plots_are_pngs(tmp_path):
    matrix = confusion_matrix([GT], [PRED], num_classes=2, score_thr=0.3)
    np.testing.assert_allclose(normalize_rows(matrix)[0], [50, 0, 50])
    assert np.isnan(normalize_rows(np.zeros((2, 2)))).all()
    png = plot_confusion_matrix(matrix, ['a', 'b', 'background'], str(tmp_path / 'cm.png'))
    written = plot_pr_curves(pr_curves([GT], [PRED], 2), ['a', 'b/c'], str(tmp_path / 'pr'))
    assert [p.split('/')[-1] for p in written] == ['pr_curve_000_a.png', 'pr_curve_001_b_c.png']
    for path in [png, *written]:
        with open(path, 'rb') as file:
            assert file.read(8) == b'\x89PNG\r\n\x1a\n'
    with pytest.raises(ValueError, match='3 labels'):
        plot_confusion_matrix(np.zeros((2, 2)), ['a', 'b', 'c'], str(tmp_path / 'x.png'))
