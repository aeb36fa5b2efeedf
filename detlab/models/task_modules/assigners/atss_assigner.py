"""Adaptive Training Sample Selection (Zhang et al., "Bridging the Gap Between
Anchor-based and Anchor-free Detection via Adaptive Training Sample Selection", 2020)."""
from typing import List, Optional, Sequence

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult

#: Stands in for "infinitely far" (distances) and "not a candidate" (overlaps),
#: the same value as MMDetection, whose ``max_overlaps`` it shows up in.
INF = 100000000
#: A candidate's centre must lie this far (pixels) inside its gt box.
MIN_CENTER_INSIDE = 0.01


def bbox_center_distance(bboxes: Tensor, priors: Tensor) -> Tensor:
    """Euclidean distance between box centres.

    Args:
        bboxes (Tensor): (K, 4) x1, y1, x2, y2.
        priors (Tensor): (N, 4) x1, y1, x2, y2.

    Returns:
        Tensor: (N, K) distance from each prior's centre to each box's centre.
    """
    box_centres = (bboxes[:, :2] + bboxes[:, 2:4]) / 2.0
    prior_centres = (priors[:, :2] + priors[:, 2:4]) / 2.0
    return (prior_centres[:, None, :] - box_centres[None, :, :]).pow(2).sum(-1).sqrt()


@TASK_UTILS.register_module()
class ATSSAssigner:
    """Pick positives per gt from an IoU threshold adapted to that gt.

    For each gt: on every level take the ``topk`` priors whose centres are
    closest to the gt's centre; the IoU threshold is the mean plus the
    (unbiased) standard deviation of those candidates' IoUs; candidates at or
    above it whose centre lies inside the gt are positive. A prior claimed by
    several gts goes to the one it overlaps most. Everything else is negative
    (see ``assign_result`` for the ``gt_inds`` convention). ``max_overlaps``
    holds the matched IoU of positives and ``-INF`` elsewhere, as in
    MMDetection.

    Args:
        topk (int): Candidates per level and gt.
        alpha (float, optional): DDOD's dynamic cost: overlaps become
            ``sigmoid(score) ** (1 - alpha) * IoU(pred box, gt) ** alpha``,
            which needs ``scores`` (N, C) and ``bboxes`` (N, 4) in the
            predictions. None (default) uses the priors' IoU.
        iou_calculator (dict): Config of the overlap calculator.
        ignore_iof_thr (float): Priors whose IoF with an ignore box exceeds
            this are ignored; negative disables it. Defaults to -1.
    """

    def __init__(self,
                 topk: int,
                 alpha: Optional[float] = None,
                 iou_calculator: dict = dict(type='BboxOverlaps2D'),
                 ignore_iof_thr: float = -1) -> None:
        if topk < 1:
            raise AssertionValueError(f'ATSSAssigner: topk must be a positive int, got {topk!r}')
        self.topk = topk
        self.alpha = alpha
        self.iou_calculator = TASK_UTILS.build(iou_calculator)
        self.ignore_iof_thr = ignore_iof_thr

    def _overlaps(self, pred_instances: InstanceData, gt_instances: InstanceData) -> Tensor:
        """(N, K) IoU of priors (or DDOD's cost of predictions) with the gts."""
        priors = pred_instances.priors[:, :4]
        if self.alpha is None:
            return self.iou_calculator(priors, gt_instances.bboxes)
        if 'scores' not in pred_instances or 'bboxes' not in pred_instances:
            raise AssertionValueError('ATSSAssigner: alpha is set (DDOD cost), so pred_instances '
                                      'needs scores and bboxes; it has '
                                      f'{sorted(pred_instances.keys())}')
        cls_cost = torch.sigmoid(pred_instances.scores[:, gt_instances.labels])
        ious = self.iou_calculator(pred_instances.bboxes, gt_instances.bboxes)
        return cls_cost**(1 - self.alpha) * ious**self.alpha

    def can_assign_batch(self, batch_gt_instances: Sequence[InstanceData],
                         batch_gt_instances_ignore: Optional[Sequence[Optional[InstanceData]]]
                         = None) -> bool:
        """Always False: each image's candidates depend on the anchors inside
        that image, so heads call :meth:`assign` image by image."""
        return False

    def assign(self,
               pred_instances: InstanceData,
               num_level_priors: List[int],
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None) -> AssignResult:
        """Assign gts to priors.

        Args:
            pred_instances (InstanceData): ``priors`` (N, 4) of all levels,
                concatenated level by level.
            num_level_priors (list[int]): Priors on each level; sums to N.
            gt_instances (InstanceData): ``bboxes`` (K, 4), ``labels`` (K,).
            gt_instances_ignore (InstanceData, optional): ``bboxes`` to ignore.

        Returns:
            AssignResult: ``gt_inds``, ``max_overlaps`` and ``labels``, (N,) each.
        """
        priors = pred_instances.priors[:, :4]
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        num_priors, num_gts = priors.size(0), gt_bboxes.size(0)
        if sum(num_level_priors) != num_priors:
            raise AssertionValueError(f'ATSSAssigner: num_level_priors={list(num_level_priors)} '
                                      f'sums to {sum(num_level_priors)}, but there are '
                                      f'{num_priors} priors')
        overlaps = self._overlaps(pred_instances, gt_instances)
        gt_inds = overlaps.new_full((num_priors,), NEGATIVE_GT_IND, dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros((num_priors,)),
                                labels=overlaps.new_full((num_priors,), NO_LABEL,
                                                         dtype=torch.long))

        distances = bbox_center_distance(gt_bboxes, priors)
        if (self.ignore_iof_thr > 0 and gt_instances_ignore is not None
                and gt_instances_ignore.bboxes.numel() > 0):
            ignore_iof = self.iou_calculator(priors, gt_instances_ignore.bboxes, mode='iof')
            ignored = ignore_iof.max(dim=1).values > self.ignore_iof_thr
            distances[ignored, :] = INF
            gt_inds[ignored] = IGNORED_GT_IND

        # (C, K): the candidate priors of each gt, topk per level.
        candidates, start = [], 0
        for level_size in num_level_priors:
            level_distances = distances[start:start + level_size]
            nearest = level_distances.topk(min(self.topk, level_size), dim=0, largest=False)
            candidates.append(nearest.indices + start)
            start += level_size
        candidates = torch.cat(candidates, dim=0)
        gt_index = torch.arange(num_gts, device=priors.device).expand_as(candidates)
        candidate_overlaps = overlaps[candidates, gt_index]
        threshold = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
        is_pos = candidate_overlaps >= threshold[None, :]

        centres = (priors[:, :2] + priors[:, 2:4]) / 2.0
        candidate_centres = centres[candidates]  # (C, K, 2)
        inside = torch.cat([candidate_centres - gt_bboxes[None, :, :2],
                            gt_bboxes[None, :, 2:4] - candidate_centres], dim=-1)
        is_pos &= inside.min(dim=-1).values > MIN_CENTER_INSIDE

        # A prior claimed by several gts goes to the one it overlaps most.
        claimed = torch.full_like(overlaps, -INF)
        claimed[candidates[is_pos], gt_index[is_pos]] = overlaps[candidates[is_pos],
                                                                 gt_index[is_pos]]
        max_overlaps, argmax = claimed.max(dim=1)
        positive = max_overlaps != -INF
        gt_inds = torch.where(positive, argmax + 1, gt_inds)
        labels = torch.where(positive, gt_labels[argmax], torch.full_like(gt_inds, NO_LABEL))
        return AssignResult(num_gts, gt_inds, max_overlaps, labels=labels)
