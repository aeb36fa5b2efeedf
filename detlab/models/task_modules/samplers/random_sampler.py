"""RandomSampler: a fixed-size random draw of positives and negatives (RPN, R-CNN)."""
from typing import Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from ..assigners import IGNORED_GT_IND, NO_LABEL, AssignResult
from .sampling_result import SamplingResult, SlotSamplingResult


@TASK_UTILS.register_module()
class RandomSampler:
    """Draw at most ``num`` priors, about ``pos_fraction`` of them positive.

    As in MMDetection: with ``add_gt_as_proposals`` the gt boxes are put in
    front of the priors as extra positives (``gt_flags`` marks them); at most
    ``int(num * pos_fraction)`` positives are drawn at random, and negatives
    fill the rest of ``num`` (capped at ``neg_pos_ub`` times the positives when
    that is non-negative). Sampled indices come back sorted. The draws use
    ``torch.randperm`` on the default CPU generator, as MMDetection's do, so a
    run seeded alike samples the same priors.

    Off the CPU, :meth:`sample_batch` and :meth:`draw_slots` draw with the
    same counts on the device (:func:`random_pick`) without making the host
    wait for it: their outputs have a fixed size, with masks of the valid
    entries.

    Args:
        num (int): Samples per image.
        pos_fraction (float): Largest share of positives.
        neg_pos_ub (int): Most negatives per positive; negative for no bound.
            Defaults to -1.
        add_gt_as_proposals (bool): Add the gt boxes to the priors. Defaults
            to True.
    """

    #: Draws are made image by image (in MMDetection's order of random
    #: numbers), so heads call :meth:`sample` per image.
    supports_batch = False

    def __init__(self,
                 num: int,
                 pos_fraction: float,
                 neg_pos_ub: int = -1,
                 add_gt_as_proposals: bool = True,
                 **kwargs) -> None:
        if num <= 0 or not 0 <= pos_fraction <= 1:
            raise AssertionValueError('RandomSampler needs num > 0 and 0 <= pos_fraction <= 1, '
                                      f'got num={num}, pos_fraction={pos_fraction}.')
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    @staticmethod
    def random_choice(gallery: Tensor, num: int) -> Tensor:
        """``num`` distinct elements of ``gallery`` (M,), in random order."""
        if num > gallery.numel():
            raise AssertionValueError(f'cannot draw {num} elements from {gallery.numel()}')
        perm = torch.randperm(gallery.numel())[:num].to(device=gallery.device)
        return gallery[perm]

    def _draw(self, candidates: Tensor, num_expected: int) -> Tensor:
        inds = torch.nonzero(candidates, as_tuple=False).squeeze(1)
        if inds.numel() <= num_expected:
            return inds
        return self.random_choice(inds, num_expected)

    def expected_negatives(self, num_pos: Tensor) -> Tensor:
        """Negatives to draw after ``num_pos`` (any shape) positives:
        ``num - num_pos``, capped at ``int(neg_pos_ub * max(1, num_pos))``
        when ``neg_pos_ub`` is non-negative (as :meth:`sample`)."""
        num_expected = self.num - num_pos
        if self.neg_pos_ub >= 0:
            bound = (num_pos.clamp(min=1).double() * self.neg_pos_ub).floor().long()
            num_expected = torch.minimum(num_expected, bound)
        return num_expected

    def sample_batch(self, pos_mask: Tensor, neg_mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Draw every image's positives and negatives at once, by the counts
        of :meth:`sample` (without ``add_gt_as_proposals``, which changes the
        priors), on the device's generator with no host-device sync.

        Args:
            pos_mask, neg_mask (Tensor): (B, N) bool positives and negatives.

        Returns:
            tuple: (B, N) bool masks of the drawn positives and negatives.
        """
        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds, pos_valid = random_pick(pos_mask, num_expected_pos, num_expected_pos)
        num_expected_neg = self.expected_negatives(pos_valid.sum(dim=-1))
        neg_inds, neg_valid = random_pick(neg_mask, num_expected_neg, self.num)
        drawn = torch.zeros_like(pos_mask)
        return drawn.scatter(-1, pos_inds, pos_valid), drawn.scatter(-1, neg_inds, neg_valid)

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, **kwargs) -> SamplingResult:
        """Sample one image's priors.

        Args:
            assign_result (AssignResult): Assignment of the N priors. With
                ``add_gt_as_proposals`` it is extended in place by the K gts.
            pred_instances (InstanceData): ``priors`` (N, 4).
            gt_instances (InstanceData): ``bboxes`` (K, 4), ``labels`` (K,).

        Returns:
            SamplingResult: Sorted ``pos_inds`` and ``neg_inds`` into the
            priors (gts first when they were added).
        """
        priors, gt_flags = self._add_gts(assign_result, pred_instances, gt_instances)
        gt_bboxes = gt_instances.bboxes
        pos_inds = self._draw(assign_result.pos_mask, int(self.num * self.pos_fraction)).unique()
        num_expected_neg = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_expected_neg = min(num_expected_neg,
                                   int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds = self._draw(assign_result.neg_mask, num_expected_neg).unique()
        return SamplingResult(pos_inds=pos_inds, neg_inds=neg_inds, priors=priors,
                              gt_bboxes=gt_bboxes, assign_result=assign_result,
                              gt_flags=gt_flags)

    def _add_gts(self, assign_result: AssignResult, pred_instances: InstanceData,
                 gt_instances: InstanceData) -> Tuple[Tensor, Tensor]:
        """``priors`` (N, 4) and ``gt_flags`` (N,) uint8; with
        ``add_gt_as_proposals`` the gts in front (``assign_result`` is
        extended in place)."""
        priors = pred_instances.priors.reshape(-1, 4)
        gt_bboxes = gt_instances.bboxes
        gt_flags = priors.new_zeros((priors.shape[0], ), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            priors = torch.cat([gt_bboxes.to(priors.dtype), priors])
            assign_result.add_gt_(gt_instances.labels)
            gt_flags = torch.cat([gt_flags.new_ones(len(gt_bboxes)), gt_flags])
        return priors, gt_flags

    def draw_slots(self, assign_result: AssignResult, pred_instances: InstanceData,
                   gt_instances: InstanceData, **kwargs) -> SlotSamplingResult:
        """Sample one image's priors into ``num`` slots, with the counts of
        :meth:`sample` (gts added alike), drawn on the device with no
        host-device sync (:func:`random_pick`): the positives first, then the
        negatives, then unused slots (when there are too few candidates).

        Args: as :meth:`sample`.

        Returns:
            SlotSamplingResult: ``num`` slots.
        """
        priors, gt_flags = self._add_gts(assign_result, pred_instances, gt_instances)
        num_priors = priors.shape[0]
        num_expected_pos = int(self.num * self.pos_fraction)
        pos_pick, pos_valid = random_pick(assign_result.pos_mask, num_expected_pos,
                                          num_expected_pos)
        num_pos = pos_valid.sum()
        neg_pick, neg_valid = random_pick(assign_result.neg_mask,
                                          self.expected_negatives(num_pos), self.num)
        num_neg = neg_valid.sum()
        # Slot s holds positive s, or negative s - num_pos, or the zero box
        # appended at index num_priors: positions in (pos_pick, neg_pick, zero box).
        slots = torch.arange(self.num, device=priors.device)
        pos_mask = slots < num_pos
        neg_mask = ~pos_mask & (slots - num_pos < num_neg)
        picks = torch.cat([pos_pick, neg_pick, pos_pick.new_full((1, ), num_priors)])
        position = torch.where(pos_mask, slots, torch.where(
            neg_mask, len(pos_pick) + slots - num_pos, len(pos_pick) + len(neg_pick)))
        gt_inds, labels = assign_result.gt_inds, assign_result.labels
        return SlotSamplingResult(
            picks[position], pos_mask, neg_mask, torch.cat([priors, priors.new_zeros(1, 4)]),
            torch.cat([gt_inds, gt_inds.new_full((1, ), IGNORED_GT_IND)]),
            torch.cat([labels, labels.new_full((1, ), NO_LABEL)]), gt_instances.bboxes,
            torch.cat([gt_flags, gt_flags.new_zeros(1)]))


def random_pick(candidates: Tensor, num_picked: Union[int, Tensor],
                most: int) -> Tuple[Tensor, Tensor]:
    """Up to ``num_picked`` distinct candidates of each row, uniformly at
    random, in a fixed-size output: no output size depends on the values, so
    the host never waits for the device (``nonzero`` and ``randperm`` over
    the candidates would).

    Every candidate gets a uniform random key and the ``k = min(most, N)``
    largest keys are taken (non-candidates' keys are below every
    candidate's): the first ``min(num_picked, candidates)`` of them are a
    uniform draw without replacement, in random order. Keys come from the
    device's default generator.

    Args:
        candidates (Tensor): (..., N) bool.
        num_picked (int | Tensor): How many to pick, per row ((...,) long)
            or for all rows; at most ``most``.
        most (int): The largest ``num_picked`` can be.

    Returns:
        tuple: ``inds`` (..., k) long distinct indices into N and ``valid``
        (..., k) bool, True on the picked ones (a prefix of each row).
    """
    keys = torch.rand(candidates.shape, device=candidates.device)
    keys = torch.where(candidates, keys, -1.)
    values, inds = keys.topk(min(most, candidates.shape[-1]), dim=-1)
    ranks = torch.arange(inds.shape[-1], device=candidates.device)
    if isinstance(num_picked, Tensor):
        num_picked = num_picked[..., None]
    return inds, (values >= 0) & (ranks < num_picked)
