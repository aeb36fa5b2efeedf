"""AssignResult.random and SamplingResult.random draw MMDetection 3.3's values for a seed
(measured by tools/dev/mmdet_random_results.py)."""
import pytest
import torch

from detlab.models.task_modules import AssignResult, SamplingResult
from detlab.models.task_modules.demodata import ensure_rng, random_boxes


def test_assign_result_random_matches_mmdetection():
    result = AssignResult.random(rng=3, num_gts=4, num_preds=10)
    assert result.num_gts == 4
    assert result.gt_inds.tolist() == [0, 0, 2, 0, -1, 4, 0, 0, 0, 1]
    assert result.labels.tolist() == [0, 0, 0, 0, 2, 2, 0, 0, 0, 2]
    expected = [0, 0, 0.2909047389129443, 0, 0.8929469543476547, 0.8962930889334381, 0, 0, 0,
                0.44080984365063647]
    assert result.max_overlaps.tolist() == pytest.approx(expected, abs=1e-12)


def test_sampling_result_random_matches_mmdetection():
    torch.manual_seed(0)  # RandomSampler draws with torch.randperm, as MMDetection's does
    result = SamplingResult.random(rng=10)
    assert result.num_gts == 1
    assert result.pos_inds.tolist() == [0]
    assert result.neg_inds.tolist() == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert result.pos_is_gt.tolist() == [1] and result.avg_factor == 13
    assert torch.allclose(result.pos_priors, torch.tensor(
        [[0.3506563901901245, 0.03709441423416138, 0.5860219597816467, 0.5631906986236572]]))


@pytest.mark.parametrize('num_gts, num_preds', [(0, 0), (0, 3), (3, 3), (7, 7)])
def test_random_results_for_edge_counts(num_gts, num_preds):
    result = SamplingResult.random(rng=0, num_gts=num_gts, num_preds=num_preds)
    assert result.num_gts == num_gts
    # The gts are added as proposals, so every one of them can be drawn.
    assert result.pos_inds.numel() + result.neg_inds.numel() <= num_preds + num_gts
    assert (result.pos_assigned_gt_inds < max(num_gts, 1)).all()


def test_random_boxes_are_ordered_and_scaled():
    boxes = random_boxes(20, scale=50, rng=ensure_rng(1))
    assert boxes.shape == (20, 4) and boxes.dtype == torch.float32
    assert (boxes[:, :2] <= boxes[:, 2:]).all() and boxes.min() >= 0 and boxes.max() <= 50
    assert torch.equal(random_boxes(3, rng=5), random_boxes(3, rng=5))


def test_sampling_result_keeps_mmdetections_older_names():
    result = SamplingResult.random(rng=4, num_gts=2, num_preds=6)
    with pytest.warns(DeprecationWarning, match='pos_priors'):
        assert torch.equal(result.pos_bboxes, result.pos_priors)
    with pytest.warns(DeprecationWarning, match='neg_priors'):
        assert torch.equal(result.neg_bboxes, result.neg_priors)
    with pytest.warns(DeprecationWarning, match='use priors'):
        assert torch.equal(result.bboxes, result.priors)
    assert result.info['num_gts'] == 2 and result.info['avg_factor'] == result.avg_factor
    assert torch.equal(result.info['pos_inds'], result.pos_inds)
