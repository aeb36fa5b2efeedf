"""The result of assigning ground-truth boxes to priors.

Convention for ``AssignResult.gt_inds`` (stated here once, pinned by a test):

* ``NEGATIVE_GT_IND`` (0): the prior is a negative (background) sample;
* ``IGNORED_GT_IND`` (-1): the prior is ignored, neither positive nor negative;
* ``k >= 1``: the prior is positive, matched to ground truth ``k - 1``.

``AssignResult.labels`` holds the matched gt's class where a prior is positive
and ``NO_LABEL`` (-1) everywhere else.
"""
from typing import Callable, Dict, Union

import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.structures.errors import AssertionKeyError

NEGATIVE_GT_IND = 0
IGNORED_GT_IND = -1
NO_LABEL = -1


class AssignResult:
    """Which ground truth each prior is matched to.

    Args:
        num_gts (int): Number of ground-truth boxes K.
        gt_inds (Tensor): (N,) long, see the module docstring for the values.
        max_overlaps (Tensor): (N,) the best overlap of each prior with any gt
            (0 where there are no gts).
        labels (Tensor): (N,) long class of the matched gt, ``NO_LABEL`` where
            the prior is not positive.
    """

    def __init__(self, num_gts: int, gt_inds: Tensor, max_overlaps: Tensor,
                 labels: Tensor) -> None:
        self.num_gts = num_gts
        self.gt_inds = gt_inds
        self.max_overlaps = max_overlaps
        self.labels = labels
        self._extra_properties: Dict[str, object] = {}

    @property
    def num_preds(self) -> int:
        """int: Number of priors N that were assigned."""
        return len(self.gt_inds)

    @property
    def pos_mask(self) -> Tensor:
        """Tensor: (N,) bool, True where the prior is positive."""
        return self.gt_inds > NEGATIVE_GT_IND

    @property
    def neg_mask(self) -> Tensor:
        """Tensor: (N,) bool, True where the prior is a negative."""
        return self.gt_inds == NEGATIVE_GT_IND

    def set_extra_property(self, key: str, value: object) -> None:
        """Attach extra per-assignment data (e.g. a centerness target)."""
        if key in self.info:
            raise AssertionKeyError(f'AssignResult already has a property named {key!r}')
        self._extra_properties[key] = value

    def get_extra_property(self, key: str) -> object:
        """Return an extra property, or None when it was never set."""
        return self._extra_properties.get(key, None)

    @property
    def info(self) -> dict:
        """dict: Every field of the result, extra properties included."""
        basic = {
            'num_gts': self.num_gts,
            'num_preds': self.num_preds,
            'gt_inds': self.gt_inds,
            'max_overlaps': self.max_overlaps,
            'labels': self.labels,
        }
        basic.update(self._extra_properties)
        return basic

    def add_gt_(self, gt_labels: Tensor) -> None:
        """Prepend the ground truths themselves as positive priors, in place.

        Two-stage samplers add the gt boxes to the proposals; each then matches
        its own gt with overlap 1.

        Args:
            gt_labels (Tensor): (K,) long labels of the K gts.
        """
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat(
            [self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps])
        self.labels = torch.cat([gt_labels.long(), self.labels])

    @classmethod
    def random(cls, rng=None, num_gts=None, num_preds=None, p_ignore: float = 0.3,
               p_assigned: float = 0.7, num_classes: int = 3, **kwargs) -> 'AssignResult':
        """A random assignment, for tests and debugging (MMDetection's ``random``).

        Args:
            rng (None | int | numpy.random.RandomState): Seed or state.
            num_gts (int, optional): Number of gts; random in [0, 8) when None.
            num_preds (int, optional): Number of priors; random in [0, 16) when None.
            p_ignore (float): Chance that an assigned prior is ignored instead.
            p_assigned (float): Chance that a prior is assigned (at most
                ``num_gts`` are).
            num_classes (int): Labels are drawn from [0, num_classes).

        Returns:
            AssignResult: With values drawn in MMDetection's order, so a seed
            gives MMDetection's result.
        """
        from ..demodata import ensure_rng, optional_count
        rng = ensure_rng(rng)
        num_gts = optional_count(num_gts, rng, 8)
        num_preds = optional_count(num_preds, rng, 16)
        if num_gts == 0:
            zeros = torch.zeros(num_preds, dtype=torch.int64)
            return cls(num_gts, zeros, torch.zeros(num_preds, dtype=torch.float32), zeros.clone())
        max_overlaps = torch.from_numpy(rng.rand(num_preds))
        wants_gt = rng.rand(num_preds) < p_assigned
        num_assigned = min(num_preds, num_gts, int(wants_gt.sum()))
        assigned_idxs = np.flatnonzero(wants_gt)
        rng.shuffle(assigned_idxs)
        is_assigned = torch.zeros(num_preds, dtype=torch.bool)
        is_assigned[np.sort(assigned_idxs[:num_assigned])] = True
        is_ignore = torch.from_numpy(rng.rand(num_preds) < p_ignore) & is_assigned
        # MMDetection shuffles a gt order it then discards; the draw is kept so a seeded
        # state advances as in MMDetection.
        rng.shuffle(np.arange(num_gts))
        gt_inds = torch.from_numpy(rng.randint(1, num_gts + 1, size=num_preds))
        gt_inds[is_ignore] = IGNORED_GT_IND
        gt_inds[~is_assigned] = NEGATIVE_GT_IND
        max_overlaps[~is_assigned] = 0
        if num_classes == 0:
            labels = torch.zeros(num_preds, dtype=torch.int64)
        else:
            labels = torch.from_numpy(rng.randint(0, num_classes, size=num_preds))
            labels[~is_assigned] = 0
        return cls(num_gts, gt_inds, max_overlaps, labels)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_gts={self.num_gts}, num_preds={self.num_preds}, '
                f'num_pos={int(self.pos_mask.sum())}, num_neg={int(self.neg_mask.sum())})')


def assign_single_image(assign_batch: Callable, pred_instances: InstanceData,
                        gt_instances: InstanceData, **batch_kwargs) -> AssignResult:
    """MMDetection's one-image ``assign`` through a batched assigner's
    ``assign_batch(priors, decoded_bboxes, pred_scores, prior_valid, gt_bboxes,
    gt_labels, gt_valid, **batch_kwargs)`` on a batch of that one image (every
    prior valid); ``batch_kwargs`` are batched too (e.g. ``gt_centers`` (1, K, 2)).

    Args:
        assign_batch (Callable): The batched assignment.
        pred_instances (InstanceData): ``priors`` (N, 4), ``bboxes`` (N, 4)
            decoded predictions, ``scores`` (N, C).
        gt_instances (InstanceData): ``bboxes`` (K, 4) (a tensor or boxes
            with ``.tensor``), ``labels`` (K,).

    Returns:
        AssignResult: the image's result; ``max_overlaps`` are 0 everywhere
        when nothing is positive, as MMDetection reports them then.
    """
    priors = pred_instances.priors
    gt_bboxes = gt_instances.bboxes
    gt_bboxes = getattr(gt_bboxes, 'tensor', gt_bboxes).reshape(-1, 4)
    gt_labels = gt_instances.labels.reshape(-1)
    num_gts, num_priors = len(gt_labels), len(priors)
    gt_inds, max_overlaps, labels = assign_batch(
        priors, pred_instances.bboxes[None], pred_instances.scores[None],
        priors.new_ones((1, num_priors), dtype=torch.bool), gt_bboxes[None].to(priors),
        gt_labels[None], gt_labels.new_ones((1, num_gts), dtype=torch.bool), **batch_kwargs)
    if not bool((gt_inds > NEGATIVE_GT_IND).any()):
        max_overlaps = max_overlaps.new_zeros((1, num_priors))
    return AssignResult(num_gts, gt_inds[0], max_overlaps[0], labels=labels[0])


def candidate_columns(candidate: Tensor, compact: bool = True) -> Union[Tensor, slice]:
    """The prior columns of a (B, P) candidate mask that a batched assignment computes on.

    A prior that is a candidate in no image stays negative (or left out) whatever its
    cost, so on the CPU costs, IoUs and matching are computed on the other columns alone
    (as MMDetection's per-image code keeps only its image's candidates): the same result
    for less work. On other devices counting those columns would synchronise host and
    device inside the training step, so every column is kept there; ``compact=False``
    keeps every column on the CPU too (that path, e.g. to test it).
    """
    if compact and candidate.device.type == 'cpu':
        return candidate.any(dim=0).nonzero().squeeze(1)
    return slice(None)


def dynamic_k_matching(cost: Tensor, ious: Tensor, pair_ok: Tensor, topk: int) -> Tensor:
    """Which (prior, gt) pairs match in SimOTA's and RTMDet's dynamic-k
    matching: (B, P, K) bool, at most one gt per prior.

    Each gt takes its ``dynamic_k`` cheapest priors, ``dynamic_k`` being the
    integer part of the sum of its ``topk`` largest IoUs (at least 1); a prior
    taken by several gts goes to the gt of least cost over all gts. No output
    size depends on the values, so nothing waits for the device.

    Args:
        cost (Tensor): (B, P, K) matching cost, ``inf`` outside ``pair_ok``.
        ious (Tensor): (B, P, K) IoUs, 0 outside ``pair_ok``.
        pair_ok (Tensor): (B, P, K) bool, the pairs that may match.
        topk (int): IoUs summed into ``dynamic_k``.
    """
    num_priors, num_gts = cost.shape[1:]
    candidate_topk = min(topk, num_priors)
    topk_ious = ious.topk(candidate_topk, dim=1).values  # (B, topk, K)
    dynamic_ks = topk_ious.sum(dim=1).int().clamp(min=1)  # (B, K)
    order = cost.topk(candidate_topk, dim=1, largest=False).indices  # (B, topk, K)
    ranks = torch.arange(candidate_topk, device=cost.device)[None, :, None]
    taken = (ranks < dynamic_ks[:, None, :]).to(torch.uint8)
    matching = torch.zeros_like(cost, dtype=torch.uint8).scatter_(1, order, taken)
    matching = matching.bool() & pair_ok
    several = matching.sum(dim=2) > 1  # (B, P)
    gts = torch.arange(num_gts, device=cost.device)
    cheapest = cost.argmin(dim=2, keepdim=True) == gts  # (B, P, K) one-hot
    return torch.where(several[:, :, None], cheapest, matching)
