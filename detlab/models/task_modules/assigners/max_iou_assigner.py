"""Assign each prior to the ground truth it overlaps most (RetinaNet, RPN, R-CNN)."""
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult

#: Overlap written for priors inside an ignore region, below any real IoU, so
#: they fall out of both the negative and the positive tests.
IGNORED_OVERLAP = -1.
#: Overlap written for padded gts and for priors an image does not assign, in
#: batched assignment: below every real and ignored overlap.
OUTSIDE_OVERLAP = -2.
#: At most this many (gt, prior) pairs are compared at once in low-quality
#: matching (8 bytes each: 32 MiB), whatever the number of gts and priors.
LOW_QUALITY_CHUNK_ELEMENTS = 2 ** 22


@TASK_UTILS.register_module()
class MaxIoUAssigner:
    """Label priors positive, negative or ignored from their IoU with the gts.

    See ``assign_result`` for the meaning of ``gt_inds``. The steps, in order
    (later steps overwrite earlier ones), as in MMDetection:

    1. every prior starts ignored;
    2. priors whose best IoU is in the negative range become negatives;
    3. priors whose best IoU >= ``pos_iou_thr`` match that best gt;
    4. with ``match_low_quality``, each gt also takes its best prior(s) when
       that IoU >= ``min_pos_iou`` (all tied priors if ``gt_max_assign_all``).
       When two gts claim the same prior the later gt wins. Like MMDetection,
       a gt whose best IoU is 0 and ``min_pos_iou=0`` claims every prior it
       has IoU 0 with; keep gts inside the image (or raise ``min_pos_iou``).

    Args:
        pos_iou_thr (float): IoU at or above which a prior is positive.
        neg_iou_thr (float | tuple[float, float]): IoU below which a prior is
            negative, or a ``[lo, hi)`` range of negative IoUs.
        min_pos_iou (float): Lowest IoU for a low-quality match (step 4).
            Defaults to 0.
        gt_max_assign_all (bool): In step 4, give a gt every prior that ties
            for its best IoU, not just the first. Defaults to True.
        ignore_iof_thr (float): Priors whose IoF with an ignore box exceeds
            this are ignored; negative disables it. Defaults to -1.
        ignore_wrt_candidates (bool): IoF over the prior's area (True) or over
            the ignore box's area (False). Defaults to True.
        match_low_quality (bool): Run step 4. Defaults to True.
        gpu_assign_thr (int): With more gts than this, assign on the CPU to
            save GPU memory; negative never does. Defaults to -1.
        iou_calculator (dict): Config of the overlap calculator.
            Defaults to ``dict(type='BboxOverlaps2D')``.
    """

    def __init__(self,
                 pos_iou_thr: float,
                 neg_iou_thr: Union[float, Tuple[float, float]],
                 min_pos_iou: float = .0,
                 gt_max_assign_all: bool = True,
                 ignore_iof_thr: float = -1,
                 ignore_wrt_candidates: bool = True,
                 match_low_quality: bool = True,
                 gpu_assign_thr: float = -1,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = self._check_neg_iou_thr(neg_iou_thr)
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.match_low_quality = match_low_quality
        self.gpu_assign_thr = gpu_assign_thr
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    @staticmethod
    def _check_neg_iou_thr(neg_iou_thr) -> Union[float, Tuple[float, float]]:
        if isinstance(neg_iou_thr, Number):
            return float(neg_iou_thr)
        if isinstance(neg_iou_thr, (tuple, list)) and len(neg_iou_thr) == 2:
            return (float(neg_iou_thr[0]), float(neg_iou_thr[1]))
        raise AssertionValueError('MaxIoUAssigner: neg_iou_thr must be a number or a (lo, hi) '
                                  f'pair, got {neg_iou_thr!r}')

    @torch.no_grad()
    def assign(self,
               pred_instances: InstanceData,
               gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None,
               **kwargs) -> AssignResult:
        """Assign gts to priors.

        Args:
            pred_instances (InstanceData): ``priors`` (N, 4) anchors or
                proposals, x1, y1, x2, y2.
            gt_instances (InstanceData): ``bboxes`` (K, 4) and ``labels`` (K,).
            gt_instances_ignore (InstanceData, optional): ``bboxes`` (I, 4)
                regions to ignore. Defaults to None.

        Returns:
            AssignResult: ``gt_inds``, ``max_overlaps`` and ``labels``, each
            (N,).
        """
        priors = pred_instances.priors
        gt_bboxes = gt_instances.bboxes
        gt_labels = gt_instances.labels
        ignore_bboxes = None if gt_instances_ignore is None else gt_instances_ignore.bboxes

        device = priors.device
        on_cpu = 0 < self.gpu_assign_thr < gt_bboxes.shape[0]
        if on_cpu:
            priors, gt_bboxes, gt_labels = priors.cpu(), gt_bboxes.cpu(), gt_labels.cpu()
            if ignore_bboxes is not None:
                ignore_bboxes = ignore_bboxes.cpu()

        overlaps = self.iou_calculator(gt_bboxes, priors)
        if (self.ignore_iof_thr > 0 and ignore_bboxes is not None and ignore_bboxes.numel() > 0
                and priors.numel() > 0):
            if self.ignore_wrt_candidates:
                ignore_iofs = self.iou_calculator(priors, ignore_bboxes, mode='iof').max(dim=1)[0]
            else:
                ignore_iofs = self.iou_calculator(ignore_bboxes, priors, mode='iof').max(dim=0)[0]
            overlaps = overlaps.masked_fill((ignore_iofs > self.ignore_iof_thr)[None],
                                            IGNORED_OVERLAP)

        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            result.labels = result.labels.to(device)
        return result

    def assign_wrt_overlaps(self, overlaps: Tensor, gt_labels: Tensor) -> AssignResult:
        """Assign from a precomputed overlap matrix.

        Args:
            overlaps (Tensor): (K, N) overlaps of K gts with N priors.
            gt_labels (Tensor): (K,) labels of the gts.

        Returns:
            AssignResult: The assignment of the N priors.
        """
        num_gts, num_priors = overlaps.shape
        gt_inds = overlaps.new_full((num_priors, ), IGNORED_GT_IND, dtype=torch.long)
        labels = overlaps.new_full((num_priors, ), NO_LABEL, dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            if num_gts == 0:
                gt_inds[:] = NEGATIVE_GT_IND
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros((num_priors, )), labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)  # best gt of each prior
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)  # best prior of each gt

        if isinstance(self.neg_iou_thr, tuple):
            neg_lo, neg_hi = self.neg_iou_thr
        else:
            # Lower bound 0 keeps priors in ignore regions (overlap -1) ignored.
            neg_lo, neg_hi = 0., self.neg_iou_thr
        # torch.where rather than boolean-mask writes: the same integers, and
        # no output whose size depends on the values (nothing waits for a GPU).
        negative = (max_overlaps >= neg_lo) & (max_overlaps < neg_hi)
        gt_inds = torch.where(negative, NEGATIVE_GT_IND, gt_inds)
        gt_inds = torch.where(max_overlaps >= self.pos_iou_thr, argmax_overlaps + 1, gt_inds)

        if self.match_low_quality:
            low_quality = self._low_quality_matches(overlaps, gt_max_overlaps, gt_argmax_overlaps)
            gt_inds = torch.where(low_quality > 0, low_quality, gt_inds)

        pos = gt_inds > NEGATIVE_GT_IND
        labels = torch.where(pos, gt_labels.long()[(gt_inds - 1).clamp(min=0)], labels)
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)

    def _low_quality_matches(self, overlaps: Tensor, gt_max_overlaps: Tensor,
                             gt_argmax_overlaps: Tensor) -> Tensor:
        """The 1-based gt each prior gets from step 4, 0 where none claims it
        (:func:`last_claiming_gt` with the gts whose best IoU is at least
        ``min_pos_iou``).

        Args:
            overlaps (Tensor): (..., K, N), any leading batch dims.
            gt_max_overlaps (Tensor): (..., K) best overlap of each gt.
            gt_argmax_overlaps (Tensor): (..., K) its prior.

        Returns:
            Tensor: (..., N) long.
        """
        return last_claiming_gt(overlaps, gt_max_overlaps, gt_argmax_overlaps,
                                gt_max_overlaps >= self.min_pos_iou, self.gt_max_assign_all)

    def can_assign_batch(self, batch_gt_instances: Sequence[InstanceData],
                         batch_gt_instances_ignore: Optional[Sequence[Optional[InstanceData]]]
                         = None) -> bool:
        """Whether :meth:`assign_batch` gives, image by image, what
        :meth:`assign` gives for this batch: not when ignore regions would be
        used (``ignore_iof_thr > 0`` and some image has them), nor when an
        image has more gts than ``gpu_assign_thr`` (:meth:`assign` moves those
        to the CPU)."""
        if self.ignore_iof_thr > 0 and any(ignore is not None and len(ignore) > 0
                                           for ignore in batch_gt_instances_ignore or ()):
            return False
        most_gts = max((len(gt) for gt in batch_gt_instances), default=0)
        return not 0 < self.gpu_assign_thr < most_gts

    @torch.no_grad()
    def assign_batch(self, priors: Tensor, prior_valid: Tensor, gt_bboxes: Tensor,
                     gt_valid: Tensor) -> Tuple[Tensor, Tensor]:
        """Assign a whole batch at once: gts padded to K per image.

        The result is, image by image, what :meth:`assign` gives for the
        valid priors and gts of that image (ignore regions are not taken
        here). No Python loop over images or boxes, and no host-device sync.

        Args:
            priors (Tensor): (N, 4) priors shared by every image.
            prior_valid (Tensor): (B, N) bool, the priors each image assigns
                (the others get ``IGNORED_GT_IND``).
            gt_bboxes (Tensor): (B, K, 4) gts, padded.
            gt_valid (Tensor): (B, K) bool, False on padding.

        Returns:
            tuple: ``gt_inds`` (B, N) long with the convention of
            ``assign_result``, and ``max_overlaps`` (B, N).
        """
        batch = gt_bboxes.shape[0]
        overlaps = self.iou_calculator(gt_bboxes, priors.expand(batch, *priors.shape))
        # Padded gts and invalid priors sit below every real (and ignored) overlap.
        overlaps = overlaps.masked_fill(~gt_valid[:, :, None], OUTSIDE_OVERLAP)
        overlaps = overlaps.masked_fill(~prior_valid[:, None, :], OUTSIDE_OVERLAP)
        max_overlaps, argmax_overlaps = overlaps.max(dim=1)  # (B, N)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=2)  # (B, K)

        neg_lo, neg_hi = (self.neg_iou_thr if isinstance(self.neg_iou_thr, tuple)
                          else (0., self.neg_iou_thr))
        negative = (max_overlaps >= neg_lo) & (max_overlaps < neg_hi)
        gt_inds = torch.full_like(argmax_overlaps, IGNORED_GT_IND).masked_fill(
            negative, NEGATIVE_GT_IND)
        gt_inds = torch.where(max_overlaps >= self.pos_iou_thr, argmax_overlaps + 1, gt_inds)
        if self.match_low_quality:
            low_quality = self._low_quality_matches(overlaps, gt_max_overlaps,
                                                    gt_argmax_overlaps)
            gt_inds = torch.where(low_quality > 0, low_quality, gt_inds)

        # An image without gts: every prior negative, overlaps 0 (as assign()).
        has_gt = gt_valid.any(dim=1, keepdim=True)
        gt_inds = torch.where(has_gt, gt_inds, NEGATIVE_GT_IND)
        max_overlaps = torch.where(has_gt, max_overlaps, 0.)
        gt_inds = torch.where(prior_valid, gt_inds, IGNORED_GT_IND)
        return gt_inds, max_overlaps


def last_claiming_gt(overlaps: Tensor, gt_max_overlaps: Tensor, gt_argmax_overlaps: Tensor,
                     eligible: Tensor, assign_all: bool,
                     prior_mask: Optional[Tensor] = None) -> Tensor:
    """The 1-based index of the gt that last claims each prior, 0 where none does.

    An eligible gt claims its best prior(s): with ``assign_all`` every prior
    whose overlap equals the gt's best, else only ``gt_argmax_overlaps``;
    ``prior_mask`` limits the claims to some priors. A prior claimed by
    several gts goes to the one with the highest index, which is what a loop
    over the gts in order, each overwriting, leaves behind (MMDetection's
    loop). The gts are taken in chunks of at most ``LOW_QUALITY_CHUNK_ELEMENTS``
    (gt, prior) pairs, so the temporaries stay bounded (a (K, N) integer matrix
    would take 8 bytes per pair, 2.4 GB more for 1,500 gts over 200,000
    anchors).

    Args:
        overlaps (Tensor): (..., K, N), any leading batch dims.
        gt_max_overlaps (Tensor): (..., K) best overlap of each gt.
        gt_argmax_overlaps (Tensor): (..., K) its (first) best prior.
        eligible (Tensor): (..., K) bool, the gts that claim.
        assign_all (bool): Claim every tied best prior, not just the first.
        prior_mask (Tensor, optional): (..., N) bool, the priors that may be
            claimed; every prior when None.

    Returns:
        Tensor: (..., N) long.
    """
    num_gts, num_priors = overlaps.shape[-2:]
    one_based = torch.arange(1, num_gts + 1, device=overlaps.device)
    claimed = overlaps.new_zeros((*overlaps.shape[:-2], num_priors), dtype=torch.long)
    if not assign_all:
        if prior_mask is not None:
            eligible = eligible & prior_mask.gather(-1, gt_argmax_overlaps)
        return claimed.scatter_reduce(-1, gt_argmax_overlaps,
                                      torch.where(eligible, one_based, 0), reduce='amax')
    pairs_per_gt = max(num_priors * overlaps[..., 0, 0].numel(), 1)
    chunk = max(1, LOW_QUALITY_CHUNK_ELEMENTS // pairs_per_gt)
    for start in range(0, num_gts, chunk):
        rows = slice(start, start + chunk)
        claims = overlaps[..., rows, :] == gt_max_overlaps[..., rows, None]  # (..., c, N)
        claims &= eligible[..., rows, None]
        if prior_mask is not None:
            claims &= prior_mask[..., None, :]
        chunk_best = torch.where(claims, one_based[rows, None], 0).amax(dim=-2)
        claimed = torch.maximum(claimed, chunk_best)
    return claimed
