"""Adaptive Training Sample Selection (Zhang et al., "Bridging the Gap Between
Anchor-based and Anchor-free Detection via Adaptive Training Sample Selection", 2020)."""
from typing import List, Optional, Sequence, Tuple

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


def nearest_k(distances: Tensor, k: int, dim: int) -> Tensor:
    """Positions of the ``k`` smallest distances along ``dim``, ordered by
    distance; of priors at exactly the k-th distance the lower positions are
    taken, and equal distances are ordered by position.

    ``torch.topk`` picks the same set except where distances tie at the k-th
    place: which of those it takes depends on the slice's length, the device
    and the algorithm it picks, so a batch (whose invalid priors are not
    removed) and a single image would not agree. The tie rule here depends on
    the relative order of the valid priors only.

    Args:
        distances (Tensor): Any shape; ``k`` <= its size along ``dim``.
        k (int): How many to take.
        dim (int): The prior dimension.

    Returns:
        Tensor: long, ``distances``'s shape with ``k`` along ``dim``.
    """
    size = distances.size(dim)
    kth = distances.topk(k, dim=dim, largest=False).values.narrow(dim, k - 1, 1)
    closer, tied = distances < kth, distances == kth
    room = k - closer.sum(dim=dim, keepdim=True)
    # int32 counts and positions: these temporaries are as large as ``distances``.
    chosen = closer | (tied & (tied.cumsum(dim=dim, dtype=torch.int32) <= room))
    shape = [1] * distances.dim()
    shape[dim] = size
    positions = torch.arange(size, dtype=torch.int32, device=distances.device).view(shape)
    index = torch.where(chosen, positions, size).topk(k, dim=dim, largest=False).values.long()
    order = distances.gather(dim, index).sort(dim=dim, stable=True).indices
    return index.gather(dim, order)


def nearest_per_level(distances: Tensor, num_level_priors: Sequence[int], topk: int,
                      dim: int) -> Tensor:
    """ATSS's candidates: on each level the ``min(topk, level size)`` priors
    nearest each gt (:func:`nearest_k`), levels concatenated along ``dim``.

    Args:
        distances (Tensor): Prior-to-gt distances, priors along ``dim``,
            concatenated level by level.
        num_level_priors (list[int]): Priors on each level.
        topk (int): Candidates per level and gt.
        dim (int): The prior dimension.

    Returns:
        Tensor: long prior indices (over all levels).
    """
    candidates, start = [], 0
    for level_size in num_level_priors:
        if level_size > 0:
            level = distances.narrow(dim, start, level_size)
            candidates.append(nearest_k(level, min(topk, level_size), dim) + start)
        start += level_size
    return torch.cat(candidates, dim=dim)


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
    MMDetection. :meth:`assign` takes one image's priors;
    :meth:`assign_batch` a whole batch of padded gts at once.

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
        """Whether heads should call :meth:`assign_batch` for this batch: off
        the CPU, unless DDOD's cost (``alpha``, which needs each image's
        predictions) or ignore regions (``ignore_iof_thr > 0`` and some image
        has them) are in use.

        On the CPU heads assign image by image with :meth:`assign`, which
        gives MMDetection's (CPU) assignment bit for bit: where two priors tie
        at a level's k-th distance, which one ``torch.topk`` takes depends on
        the slice's length and device, and :meth:`assign_batch`, whose slices
        keep the invalid priors, takes the first instead.
        """
        if self.alpha is not None:
            return False
        if self.ignore_iof_thr > 0 and any(ignore is not None and len(ignore) > 0
                                           for ignore in batch_gt_instances_ignore or ()):
            return False
        return any(gt.bboxes.device.type != 'cpu' for gt in batch_gt_instances)

    @torch.no_grad()
    def assign_batch(self, priors: Tensor, prior_valid: Tensor, num_level_priors: List[int],
                     gt_bboxes: Tensor, gt_labels: Tensor, gt_valid: Tensor
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign a whole batch at once: gts padded to K per image.

        Image by image the result is what :meth:`assign` gives for that
        image's valid priors alone (ignore regions are not taken here). The
        invalid priors are not removed: they are infinitely far from every gt,
        so a level's top k never takes one while the image has k valid priors
        there; when it has fewer, the picks that land on invalid priors are
        dropped from the candidates, which leaves the ``min(topk, valid
        priors of the level)`` candidates that :meth:`assign` takes. Of
        priors tied at exactly the k-th distance the first ones enter
        (:func:`nearest_k`; :meth:`assign` takes ``torch.topk``'s choice, as
        MMDetection), so that the result does not depend on the invalid
        priors kept in the slices, nor on the device. No Python loop over
        images or boxes, no host-device synchronisation.

        Args:
            priors (Tensor): (N, 4) priors shared by every image, all levels
                concatenated level by level.
            prior_valid (Tensor): (B, N) bool, the priors each image assigns
                (the others get ``IGNORED_GT_IND``).
            num_level_priors (list[int]): Priors on each level; sums to N.
            gt_bboxes (Tensor): (B, K, 4) gts, padded.
            gt_labels (Tensor): (B, K) their labels.
            gt_valid (Tensor): (B, K) bool, False on padding.

        Returns:
            tuple: ``gt_inds`` (B, N) long with the convention of
            ``assign_result``, ``max_overlaps`` (B, N) and ``labels`` (B, N)
            long, as :meth:`assign` gives them on the valid priors (invalid
            priors: ``IGNORED_GT_IND``, 0 and ``NO_LABEL``).
        """
        priors = priors[:, :4]
        batch, num_priors = prior_valid.shape
        if sum(num_level_priors) != num_priors or priors.size(0) != num_priors:
            raise AssertionValueError(f'ATSSAssigner: num_level_priors={list(num_level_priors)} '
                                      f'sums to {sum(num_level_priors)}, but there are '
                                      f'{priors.size(0)} priors and {num_priors} valid flags')
        num_gts = gt_bboxes.size(1)
        overlaps = self.iou_calculator(priors.expand(batch, -1, -1), gt_bboxes)  # (B, N, K)
        centres = (priors[:, :2] + priors[:, 2:4]) / 2.0
        gt_centres = (gt_bboxes[..., :2] + gt_bboxes[..., 2:4]) / 2.0
        distances = (centres[None, :, None, :] - gt_centres[:, None, :, :]).pow(2).sum(-1).sqrt()
        distances = distances.masked_fill(~prior_valid[:, :, None], float('inf'))

        # (B, C, K): the candidate priors of each gt, topk per level, and
        # whether each pick is a valid prior.
        candidates = nearest_per_level(distances, num_level_priors, self.topk, dim=1)
        is_candidate = prior_valid[:, :, None].expand(-1, -1, num_gts).gather(1, candidates)
        candidate_overlaps = overlaps.gather(1, candidates)
        threshold = self._batch_threshold(candidate_overlaps, is_candidate)
        is_pos = (candidate_overlaps >= threshold[:, None, :]) & is_candidate

        candidate_centres = centres[candidates]  # (B, C, K, 2)
        inside = torch.cat([candidate_centres - gt_bboxes[:, None, :, :2],
                            gt_bboxes[:, None, :, 2:4] - candidate_centres], dim=-1)
        is_pos &= (inside.min(dim=-1).values > MIN_CENTER_INSIDE) & gt_valid[:, None, :]

        # A prior claimed by several gts goes to the one it overlaps most
        # (the first of equal overlaps, as ``max`` in :meth:`assign`). A gt's
        # candidates are distinct priors, so the scatter writes each (prior,
        # gt) pair at most once.
        claimed = torch.full_like(overlaps, -INF).scatter_(
            1, candidates, torch.where(is_pos, candidate_overlaps, -INF))
        max_overlaps, argmax = claimed.max(dim=2)  # (B, N)
        positive = max_overlaps != -INF
        gt_inds = torch.where(positive, argmax + 1, NEGATIVE_GT_IND)
        labels = torch.where(positive, gt_labels.gather(1, argmax), NO_LABEL)

        # An image without gts: every prior negative, overlaps 0 (as assign()).
        has_gt = gt_valid.any(dim=1, keepdim=True)
        max_overlaps = torch.where(has_gt, max_overlaps, 0.)
        gt_inds = torch.where(prior_valid, gt_inds, IGNORED_GT_IND)
        max_overlaps = torch.where(prior_valid, max_overlaps, 0.)
        labels = torch.where(prior_valid, labels, NO_LABEL)
        return gt_inds, max_overlaps, labels

    @staticmethod
    def _batch_threshold(candidate_overlaps: Tensor, is_candidate: Tensor) -> Tensor:
        """(B, K) mean plus unbiased standard deviation of each gt's candidate
        overlaps (B, C, K), over the picks that are candidates.

        Where every pick is a candidate (an image with at least ``topk``
        valid priors on every level), ``Tensor.mean`` and ``Tensor.std`` give
        the same bits as in :meth:`assign`; otherwise the two sums over the
        candidates give the same value to rounding.
        """
        full = candidate_overlaps.mean(1) + candidate_overlaps.std(1)
        count = is_candidate.sum(1)
        kept = torch.where(is_candidate, candidate_overlaps, 0.)
        mean = kept.sum(1) / count
        deviation = torch.where(is_candidate, candidate_overlaps - mean[:, None, :], 0.)
        std = (deviation.pow(2).sum(1) / (count - 1)).sqrt()
        return torch.where(count == candidate_overlaps.size(1), full, mean + std)

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
