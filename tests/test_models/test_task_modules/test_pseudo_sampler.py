import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules.assigners import AssignResult
from detlab.registry import TASK_UTILS

PRIORS = torch.arange(20, dtype=torch.float32).view(5, 4)


def _sample(gt_inds, gt_bboxes, labels):
    result = AssignResult(num_gts=len(gt_bboxes), gt_inds=torch.tensor(gt_inds),
                          max_overlaps=torch.zeros(len(gt_inds)), labels=torch.tensor(labels))
    sampler = TASK_UTILS.build(dict(type='PseudoSampler'))
    return sampler.sample(result, InstanceData(priors=PRIORS),
                          InstanceData(bboxes=gt_bboxes, labels=torch.zeros(len(gt_bboxes))))


def test_positives_negatives_and_their_targets():
    gt_bboxes = torch.tensor([[0., 0., 1., 1.], [2., 2., 3., 3.]])
    # Priors: 0 -> gt 1, 1 negative, 2 ignored, 3 -> gt 0, 4 negative.
    res = _sample([2, 0, -1, 1, 0], gt_bboxes, [7, -1, -1, 3, -1])
    assert res.pos_inds.tolist() == [0, 3]
    assert res.neg_inds.tolist() == [1, 4]
    assert torch.equal(res.pos_priors, PRIORS[[0, 3]])
    assert torch.equal(res.neg_priors, PRIORS[[1, 4]])
    assert res.pos_assigned_gt_inds.tolist() == [1, 0]
    assert torch.equal(res.pos_gt_bboxes, gt_bboxes[[1, 0]])
    assert res.pos_gt_labels.tolist() == [7, 3]
    assert res.pos_is_gt.tolist() == [0, 0]
    assert res.num_gts == 2
    assert res.avg_factor == 2  # positives only
    assert res.priors.shape == (4, 4)


def test_no_gt_gives_empty_positive_targets():
    res = _sample([0] * 5, torch.zeros(0, 4), [-1] * 5)
    assert res.pos_inds.numel() == 0 and res.neg_inds.tolist() == [0, 1, 2, 3, 4]
    assert res.pos_gt_bboxes.shape == (0, 4)
    assert res.num_gts == 0
    # Never 0, so a loss divided by it stays finite.
    assert res.avg_factor == 1
