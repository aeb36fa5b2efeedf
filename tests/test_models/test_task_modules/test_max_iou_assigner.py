import pytest
import torch
from mmengine.structures import InstanceData

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from detlab.models.task_modules.assigners import max_iou_assigner
from detlab.models.task_modules.assigners import (IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL,
                                                  MaxIoUAssigner)
from detlab.registry import TASK_UTILS

# Priors: 0 matches gt 0 exactly, 1 overlaps gt 0 with IoU 1/3, 2 is far away,
# 3 overlaps gt 1 with IoU 0.5.
PRIORS = torch.tensor([[0., 0., 10., 10.], [5., 0., 15., 10.], [50., 50., 60., 60.],
                       [20., 20., 30., 25.]])
GT_BBOXES = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
GT_LABELS = torch.tensor([2, 0])


def _assign(assigner, priors=PRIORS, gt_bboxes=GT_BBOXES, gt_labels=GT_LABELS, ignore=None):
    gt_ignore = None if ignore is None else InstanceData(bboxes=ignore)
    return assigner.assign(InstanceData(priors=priors),
                           InstanceData(bboxes=gt_bboxes, labels=gt_labels), gt_ignore)


def test_sentinel_values_are_pinned():
    assert (NEGATIVE_GT_IND, IGNORED_GT_IND, NO_LABEL) == (0, -1, -1)


def test_positive_negative_and_ignored_by_thresholds():
    assigner = TASK_UTILS.build(dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.3,
                                     match_low_quality=False))
    result = _assign(assigner)
    # Prior 0 -> gt 0 (index 1), prior 1 (IoU 1/3) is between thresholds -> ignored,
    # prior 2 negative, prior 3 (IoU 0.5 >= pos_iou_thr) -> gt 1 (index 2).
    assert result.gt_inds.tolist() == [1, IGNORED_GT_IND, NEGATIVE_GT_IND, 2]
    assert result.labels.tolist() == [2, NO_LABEL, NO_LABEL, 0]
    assert torch.allclose(result.max_overlaps, torch.tensor([1., 1 / 3, 0., 0.5]))
    assert result.num_gts == 2 and result.num_preds == 4
    assert result.gt_inds.dtype == torch.long and result.labels.dtype == torch.long


def test_neg_iou_thr_range():
    assigner = MaxIoUAssigner(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.4), match_low_quality=False)
    result = _assign(assigner)
    # IoU 0 is below the negative range, so the far prior is ignored; 1/3 is negative.
    assert result.gt_inds.tolist() == [1, NEGATIVE_GT_IND, IGNORED_GT_IND, 2]


def test_low_quality_match_makes_each_gt_best_prior_positive():
    priors = torch.tensor([[0., 0., 10., 10.], [25., 20., 35., 30.], [60., 60., 70., 70.]])
    # gt 1's best prior has IoU 1/3, below pos_iou_thr.
    strict = _assign(MaxIoUAssigner(0.5, 0.3, match_low_quality=False), priors=priors)
    assert strict.gt_inds.tolist() == [1, IGNORED_GT_IND, NEGATIVE_GT_IND]
    loose = _assign(MaxIoUAssigner(0.5, 0.3, min_pos_iou=0.2), priors=priors)
    assert loose.gt_inds.tolist() == [1, 2, NEGATIVE_GT_IND]
    assert loose.labels.tolist() == [2, 0, NO_LABEL]
    too_low = _assign(MaxIoUAssigner(0.5, 0.3, min_pos_iou=0.4), priors=priors)
    assert too_low.gt_inds.tolist() == [1, IGNORED_GT_IND, NEGATIVE_GT_IND]


def test_gt_max_assign_all_takes_every_tied_prior():
    priors = torch.tensor([[20., 20., 30., 25.], [20., 25., 30., 30.]])  # both IoU 0.5 with gt 1
    gt = GT_BBOXES
    all_ties = _assign(MaxIoUAssigner(0.9, 0.1, gt_max_assign_all=True), priors=priors,
                       gt_bboxes=gt)
    assert all_ties.gt_inds.tolist() == [2, 2]
    first_only = _assign(MaxIoUAssigner(0.9, 0.1, gt_max_assign_all=False), priors=priors,
                         gt_bboxes=gt)
    assert first_only.gt_inds.tolist() == [2, IGNORED_GT_IND]


def test_low_quality_match_later_gt_wins_a_shared_prior():
    # Both gts have the same single best prior; a loop over gts would leave the last one.
    priors = torch.tensor([[0., 0., 10., 10.], [100., 100., 110., 110.]])
    gts = torch.tensor([[0., 0., 4., 10.], [6., 0., 10., 10.]])
    for assign_all in (True, False):
        result = _assign(MaxIoUAssigner(0.9, 0.1, gt_max_assign_all=assign_all), priors=priors,
                         gt_bboxes=gts, gt_labels=torch.tensor([0, 1]))
        assert result.gt_inds.tolist() == [2, NEGATIVE_GT_IND]
        assert result.labels.tolist() == [1, NO_LABEL]


def test_ignore_iof_thr_ignores_priors_inside_ignore_regions():
    assigner = MaxIoUAssigner(0.5, 0.3, ignore_iof_thr=0.5)
    ignore = torch.tensor([[48., 48., 62., 62.]])  # covers prior 2 completely
    result = _assign(assigner, ignore=ignore)
    assert result.gt_inds[2].item() == IGNORED_GT_IND
    assert result.gt_inds[0].item() == 1
    # Without ignore boxes (or with an empty set) prior 2 stays negative.
    assert _assign(assigner).gt_inds[2].item() == NEGATIVE_GT_IND
    assert _assign(assigner, ignore=torch.zeros(0, 4)).gt_inds[2].item() == NEGATIVE_GT_IND
    # ignore_iof_thr < 0 disables ignoring.
    off = _assign(MaxIoUAssigner(0.5, 0.3), ignore=ignore)
    assert off.gt_inds[2].item() == NEGATIVE_GT_IND


def test_no_gt_makes_every_prior_negative():
    result = _assign(MaxIoUAssigner(0.5, 0.4), gt_bboxes=torch.zeros(0, 4),
                     gt_labels=torch.zeros(0, dtype=torch.long))
    assert result.num_gts == 0
    assert result.gt_inds.tolist() == [NEGATIVE_GT_IND] * 4
    assert result.labels.tolist() == [NO_LABEL] * 4
    assert torch.equal(result.max_overlaps, torch.zeros(4))


def test_no_priors_gives_empty_result():
    result = _assign(MaxIoUAssigner(0.5, 0.4), priors=torch.zeros(0, 4))
    assert result.num_preds == 0 and result.num_gts == 2
    assert result.gt_inds.shape == result.labels.shape == result.max_overlaps.shape == (0, )


def test_one_class_and_no_grad():
    priors = PRIORS.clone().requires_grad_(True)
    result = _assign(MaxIoUAssigner(0.5, 0.3), priors=priors, gt_labels=torch.tensor([0, 0]))
    assert not result.max_overlaps.requires_grad
    assert set(result.labels.tolist()) <= {0, NO_LABEL}


def test_gpu_assign_thr_on_cpu_gives_the_same_result():
    reference = _assign(MaxIoUAssigner(0.5, 0.3))
    offloaded = _assign(MaxIoUAssigner(0.5, 0.3, gpu_assign_thr=1))
    assert torch.equal(reference.gt_inds, offloaded.gt_inds)


def test_bad_neg_iou_thr_raises():
    with pytest.raises(ValueError, match='neg_iou_thr'):
        MaxIoUAssigner(0.5, neg_iou_thr=(0.1, 0.2, 0.3))


def test_add_gt_prepends_gts_as_positives():
    result = _assign(MaxIoUAssigner(0.5, 0.3))
    result.add_gt_(GT_LABELS)
    assert result.gt_inds[:2].tolist() == [1, 2]
    assert result.labels[:2].tolist() == GT_LABELS.tolist()
    assert result.max_overlaps[:2].tolist() == [1., 1.]
    assert result.num_preds == 6


class LargestTemporary(TorchDispatchMode):
    """Records the largest tensor any operation returns while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest_bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                self.largest_bytes = max(self.largest_bytes,
                                         tensor.numel() * tensor.element_size())
        return out


def naive_low_quality(overlaps, min_pos_iou):
    """MMDetection's loop over the gts: later gts overwrite earlier ones."""
    claimed = torch.zeros(overlaps.shape[1], dtype=torch.long)
    for gt in range(overlaps.shape[0]):
        best = overlaps[gt].max()
        if best >= min_pos_iou:
            claimed[overlaps[gt] == best] = gt + 1
    return claimed


def test_low_quality_matching_keeps_temporaries_bounded(monkeypatch):
    """1,500 gts over 200,000 anchors took ~3.7 GiB more than MMDetection: (K, N)
    int64 temporaries. The gts now go in chunks of a bounded number of pairs."""
    budget = 1000
    monkeypatch.setattr(max_iou_assigner, 'LOW_QUALITY_CHUNK_ELEMENTS', budget)
    generator = torch.Generator().manual_seed(0)
    num_gts, num_priors = 40, 500  # 20,000 pairs, 20x the budget
    overlaps = (torch.rand(num_gts, num_priors, generator=generator) * 10).round() / 10
    gt_max, gt_argmax = overlaps.max(dim=1)
    assigner = MaxIoUAssigner(0.5, 0.4, min_pos_iou=0.3)
    with LargestTemporary() as recorder:
        claimed = assigner._low_quality_matches(overlaps, gt_max, gt_argmax)
    assert torch.equal(claimed, naive_low_quality(overlaps, 0.3))
    assert recorder.largest_bytes <= budget * 8 < overlaps.numel() * 8


def test_chunk_budget_is_far_below_the_issue_case():
    # 1,500 x 200,000 pairs as int64 would be 2.4 GB; one chunk stays under 64 MiB.
    assert max_iou_assigner.LOW_QUALITY_CHUNK_ELEMENTS * 8 <= 64 * 2 ** 20


@pytest.mark.parametrize('ignore_iof_thr', [-1, 0.5])
def test_assign_runs_no_syncing_op(ignore_iof_thr):
    """Every label is written with torch.where / masked_fill: no op whose
    output size depends on the values, so nothing would wait for a GPU."""
    from helpers import record_syncing_ops
    assigner = MaxIoUAssigner(0.5, 0.3, min_pos_iou=0.2, ignore_iof_thr=ignore_iof_thr)
    ignore = torch.tensor([[48., 48., 62., 62.]])
    with record_syncing_ops() as ops:
        result = _assign(assigner, ignore=ignore)
    assert not ops.syncing
    expected_far = IGNORED_GT_IND if ignore_iof_thr > 0 else NEGATIVE_GT_IND
    assert result.gt_inds.tolist() == [1, IGNORED_GT_IND, expected_far, 2]
    assert result.labels.tolist() == [2, NO_LABEL, NO_LABEL, 0]
