"""Which priors a head trains on, and the gt each positive one regresses to."""
import warnings

import torch
from torch import Tensor

from ..assigners import AssignResult

#: ``num_pos`` and ``num_neg`` never drop below this, so a loss divided by
#: them stays finite on an image without positives (as in MMDetection).
MIN_SAMPLE_COUNT = 1


class SamplingResult:
    """Indices of sampled priors plus their targets.

    Args:
        pos_inds (Tensor): (P,) long indices of positive priors.
        neg_inds (Tensor): (Q,) long indices of negative priors.
        priors (Tensor): (N, 4) all priors.
        gt_bboxes (Tensor): (K, 4) ground-truth boxes; K may be 0.
        assign_result (AssignResult): The assignment the samples come from.
        gt_flags (Tensor): (N,) uint8, 1 where a prior is a gt box that a
            sampler added to the proposals.
        avg_factor_with_neg (bool): ``avg_factor`` counts negatives too
            (True) or positives only (False). Defaults to True.

    Attributes:
        pos_priors (Tensor): (P, 4). neg_priors (Tensor): (Q, 4).
        pos_assigned_gt_inds (Tensor): (P,) 0-based index of each positive's gt.
        pos_gt_bboxes (Tensor): (P, 4) the gt box of each positive.
        pos_gt_labels (Tensor): (P,) the gt label of each positive.
        pos_is_gt (Tensor): (P,) uint8 ``gt_flags`` of the positives.
        num_gts (int): K. num_pos, num_neg (int): P and Q, at least 1.
        avg_factor (int): ``num_pos`` (+ ``num_neg`` with
            ``avg_factor_with_neg``), what a loss normalises by.
    """

    def __init__(self,
                 pos_inds: Tensor,
                 neg_inds: Tensor,
                 priors: Tensor,
                 gt_bboxes: Tensor,
                 assign_result: AssignResult,
                 gt_flags: Tensor,
                 avg_factor_with_neg: bool = True) -> None:
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.num_pos = max(pos_inds.numel(), MIN_SAMPLE_COUNT)
        self.num_neg = max(neg_inds.numel(), MIN_SAMPLE_COUNT)
        self.avg_factor_with_neg = avg_factor_with_neg
        self.avg_factor = self.num_pos + self.num_neg if avg_factor_with_neg else self.num_pos
        self.pos_priors = priors[pos_inds]
        self.neg_priors = priors[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        self.pos_gt_labels = assign_result.labels[pos_inds]
        gt_bboxes = gt_bboxes.reshape(-1, 4)
        if gt_bboxes.numel() == 0:
            # No gt means no positive; indexing an empty tensor would raise.
            self.pos_gt_bboxes = gt_bboxes.new_zeros((pos_inds.numel(), 4))
        else:
            self.pos_gt_bboxes = gt_bboxes[self.pos_assigned_gt_inds.long()]

    @classmethod
    def random(cls, rng=None, **kwargs) -> 'SamplingResult':
        """A random sampling result, for tests and debugging (MMDetection's ``random``).

        A random ``AssignResult`` (``kwargs`` go to ``AssignResult.random``: num_gts,
        num_preds, p_ignore, p_assigned, num_classes) of random boxes is sampled by a
        ``RandomSampler(32, 0.5)`` that adds the gts as proposals.

        Args:
            rng (None | int | numpy.random.RandomState): Seed or state.
        """
        from mmengine.structures import InstanceData

        from ..demodata import ensure_rng, random_boxes
        from .random_sampler import RandomSampler
        rng = ensure_rng(rng)
        assign_result = AssignResult.random(rng=rng, **kwargs)
        priors = random_boxes(assign_result.num_preds, rng=rng)
        gt_bboxes = random_boxes(assign_result.num_gts, rng=rng)
        gt_labels = torch.randint(0, 5, (assign_result.num_gts, ), dtype=torch.long)
        sampler = RandomSampler(num=32, pos_fraction=0.5, neg_pos_ub=-1,
                                add_gt_as_proposals=True)
        return sampler.sample(assign_result, InstanceData(priors=priors),
                              InstanceData(bboxes=gt_bboxes, labels=gt_labels))

    @property
    def priors(self) -> Tensor:
        """Tensor: (P + Q, 4) positive then negative priors."""
        return torch.cat([self.pos_priors, self.neg_priors])

    @property
    def pos_roi_mask(self) -> Tensor:
        """Tensor: (P + Q,) bool, which of :attr:`priors` are positives."""
        mask = self.pos_inds.new_zeros(len(self.pos_inds) + len(self.neg_inds), dtype=torch.bool)
        mask[:len(self.pos_inds)] = True
        return mask

    @property
    def bboxes(self) -> Tensor:
        """MMDetection's older name of ``priors``."""
        warnings.warn('SamplingResult.bboxes is deprecated; use priors', DeprecationWarning)
        return self.priors

    @property
    def pos_bboxes(self) -> Tensor:
        """MMDetection's older name of ``pos_priors``."""
        warnings.warn('SamplingResult.pos_bboxes is deprecated; use pos_priors',
                      DeprecationWarning)
        return self.pos_priors

    @property
    def neg_bboxes(self) -> Tensor:
        """MMDetection's older name of ``neg_priors``."""
        warnings.warn('SamplingResult.neg_bboxes is deprecated; use neg_priors',
                      DeprecationWarning)
        return self.neg_priors

    @property
    def info(self) -> dict:
        """dict: The sampled indices, priors and counts, by MMDetection's keys."""
        keys = ('pos_inds', 'neg_inds', 'pos_priors', 'neg_priors', 'pos_is_gt', 'num_gts',
                'pos_assigned_gt_inds', 'num_pos', 'num_neg', 'avg_factor')
        return {key: getattr(self, key) for key in keys}

    def to(self, device) -> 'SamplingResult':
        """Move every tensor to ``device`` in place and return self."""
        for key, value in vars(self).items():
            if isinstance(value, Tensor):
                setattr(self, key, value.to(device))
        return self

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_gts={self.num_gts}, '
                f'pos={self.pos_inds.numel()}, neg={self.neg_inds.numel()}, '
                f'avg_factor={self.avg_factor})')


def _positives_of(slot_field: str, doc: str) -> property:
    """A property: the rows of ``slot_field`` on the positive slots."""
    return property(lambda self: getattr(self, slot_field)[self.pos_inds], doc=doc)


class SlotSamplingResult:
    """One image's samples in a fixed number S of slots: the drawn positives
    first, then the drawn negatives, then unused slots, which train nothing
    (zero weight). A sampler fills it off the CPU (``RandomSampler.draw_slots``)
    so that no output size depends on the values and the host never waits for
    the device; every image gets S RoIs, where :class:`SamplingResult` has
    fewer only when there are not enough candidates.

    Args:
        inds (Tensor): (S,) long index of each slot's prior; an unused slot
            points at the extra all-zero box at index N of ``priors``.
        pos_mask, neg_mask (Tensor): (S,) bool, the slots holding a drawn
            positive / negative.
        priors (Tensor): (N + 1, 4) the priors (gts first where the sampler
            added them) and a zero box.
        gt_inds (Tensor): (N + 1,) the assignment's ``gt_inds`` (1-based
            gt, 0 negative, -1 ignored, and -1 for the zero box).
        labels (Tensor): (N + 1,) the assignment's labels.
        gt_bboxes (Tensor): (K, 4) the gts; K may be 0.
        gt_flags (Tensor): (N + 1,) uint8, 1 where the prior is a gt box.

    Attributes:
        slot_priors (Tensor): (S, 4) each slot's box.
        slot_gt_inds (Tensor): (S,) 0-based gt of each slot (0 off the
            positives, which nothing reads).
        slot_labels (Tensor): (S,) gt label (meaningful on the positives).
        slot_gt_bboxes (Tensor): (S, 4) gt box (meaningful on the positives).
        num_gts (int): K.
    """

    def __init__(self, inds: Tensor, pos_mask: Tensor, neg_mask: Tensor, priors: Tensor,
                 gt_inds: Tensor, labels: Tensor, gt_bboxes: Tensor, gt_flags: Tensor) -> None:
        self.pos_mask = pos_mask
        self.neg_mask = neg_mask
        self._pos_inds = None
        self.slot_priors = priors[inds]
        self.slot_gt_inds = (gt_inds[inds] - 1).clamp(min=0)
        self.slot_labels = labels[inds]
        self.slot_is_gt = gt_flags[inds]
        self.num_gts = gt_bboxes.shape[0]
        gt_bboxes = gt_bboxes.reshape(-1, 4).to(priors.dtype)
        self.slot_gt_bboxes = (gt_bboxes[self.slot_gt_inds] if self.num_gts > 0
                               else priors.new_zeros((len(inds), 4)))

    @property
    def priors(self) -> Tensor:
        """Tensor: (S, 4) every slot's box, the RoIs a head runs on."""
        return self.slot_priors

    @property
    def pos_roi_mask(self) -> Tensor:
        """Tensor: (S,) bool, which of :attr:`priors` are positives."""
        return self.pos_mask

    @property
    def pos_inds(self) -> Tensor:
        """Tensor: (P,) the positive slots, found once (``nonzero``: the host
        waits for the device) for the parts of a head that take only the
        positives (Mask R-CNN's mask branch), as are the properties below."""
        if self._pos_inds is None:
            self._pos_inds = self.pos_mask.nonzero(as_tuple=True)[0]
        return self._pos_inds

    pos_priors = _positives_of('slot_priors', '(P, 4) the positives\' boxes.')
    pos_assigned_gt_inds = _positives_of('slot_gt_inds', '(P,) 0-based gt of each positive.')
    pos_gt_labels = _positives_of('slot_labels', '(P,) gt label of each positive.')
    pos_gt_bboxes = _positives_of('slot_gt_bboxes', '(P, 4) gt box of each positive.')
    pos_is_gt = _positives_of('slot_is_gt', '(P,) uint8, 1 where the positive is a gt box.')

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_gts={self.num_gts}, '
                f'slots={len(self.pos_mask)})')
