"""YOLOv3's assignment: max-IoU rules, with positives only among the priors of the cells
that hold a gt's centre (``responsible_flags``)."""
from numbers import Number
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult
from .max_iou_assigner import last_claiming_gt

#: Overlap written for priors outside the responsible cells, below any real IoU.
NOT_RESPONSIBLE_OVERLAP = -1.
#: Overlap written for padded gts in batched assignment: below every real and
#: not-responsible overlap, so a padded gt is never any prior's best.
PADDED_GT_OVERLAP = -2.


@TASK_UTILS.register_module()
class GridAssigner:
    """MMDetection 3.3's GridAssigner (``gt_inds``: 0 negative, -1 ignored, k gt k-1).

    In order (later steps overwrite earlier ones):

    1. every prior starts ignored;
    2. priors whose best IoU with any gt is in the negative range
       (``[0, neg_iou_thr]``, or ``(lo, hi]`` for a pair) become negatives;
    3. responsible priors whose best IoU among gts is ``> pos_iou_thr``
       match that gt;
    4. each gt whose best IoU over responsible priors is ``> min_pos_iou``
       takes those prior(s) (every tied one with ``gt_max_assign_all``); a
       later gt wins a prior two gts claim.

    :meth:`assign` takes one image (MMDetection's interface); :meth:`assign_batch`
    a padded batch at once, with the same result image by image.

    Args:
        pos_iou_thr (float): Positive threshold (strict).
        neg_iou_thr (float | tuple[float, float]): Negative bound or range.
        min_pos_iou (float): Least IoU for step 4 (strict). Defaults to 0.
        gt_max_assign_all (bool): Step 4 takes all tied priors. Defaults to True.
        iou_calculator (dict): Defaults to ``dict(type='BboxOverlaps2D')``.
    """

    def __init__(self,
                 pos_iou_thr: float,
                 neg_iou_thr: Union[float, Sequence[float]],
                 min_pos_iou: float = .0,
                 gt_max_assign_all: bool = True,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        if not isinstance(neg_iou_thr, Number) and len(neg_iou_thr) != 2:
            raise AssertionValueError(f'GridAssigner: neg_iou_thr must be a number or a (low, '
                                      f'high) pair, got {neg_iou_thr!r}')
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign the priors of one image.

        Args:
            pred_instances (InstanceData): ``priors`` (P, 4) and
                ``responsible_flags`` (P,) bool/uint8: whether the prior's
                cell holds a gt centre.
            gt_instances (InstanceData): ``bboxes`` (G, 4), ``labels`` (G,).
            gt_instances_ignore: Unused, as in MMDetection.

        Returns:
            AssignResult: ``gt_inds``, ``max_overlaps`` (best IoU over
            responsible priors' gts; 0 without gts or priors) and ``labels``.
        """
        gt_bboxes, gt_labels = gt_instances.bboxes, gt_instances.labels
        priors = pred_instances.priors
        responsible = pred_instances.responsible_flags.bool()
        num_gts, num_priors = gt_bboxes.size(0), priors.size(0)
        overlaps = self.iou_calculator(gt_bboxes, priors)
        gt_inds = overlaps.new_full((num_priors, ), IGNORED_GT_IND, dtype=torch.long)
        if num_gts == 0 or num_priors == 0:
            if num_gts == 0:
                gt_inds[:] = NEGATIVE_GT_IND
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros((num_priors, )),
                                labels=overlaps.new_full((num_priors, ), NO_LABEL,
                                                         dtype=torch.long))
        gt_inds[self._negative(overlaps.max(dim=0).values)] = NEGATIVE_GT_IND

        overlaps[:, ~responsible] = NOT_RESPONSIBLE_OVERLAP
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)
        positive = (max_overlaps > self.pos_iou_thr) & responsible
        gt_inds[positive] = argmax_overlaps[positive] + 1
        for i in range(num_gts):
            if gt_max_overlaps[i] <= self.min_pos_iou:
                continue
            if self.gt_max_assign_all:
                gt_inds[(overlaps[i] == gt_max_overlaps[i]) & responsible] = i + 1
            elif responsible[gt_argmax_overlaps[i]]:
                gt_inds[gt_argmax_overlaps[i]] = i + 1

        labels = gt_inds.new_full((num_priors, ), NO_LABEL)
        matched = gt_inds > 0
        labels[matched] = gt_labels[gt_inds[matched] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels=labels)

    def can_assign_batch(self, batch_gt_instances: Sequence[InstanceData],
                         batch_gt_instances_ignore: Optional[Sequence[Optional[InstanceData]]]
                         = None) -> bool:
        """Always True: :meth:`assign_batch` gives, image by image, what
        :meth:`assign` gives, and :meth:`assign` does not use ignore regions
        (as MMDetection's)."""
        return True

    def _negative(self, max_overlaps: Tensor) -> Tensor:
        """Priors whose best IoU lies in the negative range (step 2)."""
        if isinstance(self.neg_iou_thr, Number):
            return (max_overlaps >= 0) & (max_overlaps <= self.neg_iou_thr)
        low, high = self.neg_iou_thr
        return (max_overlaps > low) & (max_overlaps <= high)

    @torch.no_grad()
    def assign_batch(self, priors: Tensor, responsible: Tensor, gt_bboxes: Tensor,
                     gt_valid: Tensor) -> Tuple[Tensor, Tensor]:
        """Assign a whole batch at once: gts padded to K per image.

        Image by image the result is :meth:`assign`'s ``gt_inds`` and
        ``max_overlaps`` for that image's real gts and responsible flags. No
        Python loop over images or boxes, and no host-device sync.

        Args:
            priors (Tensor): (N, 4) priors shared by every image.
            responsible (Tensor): (B, N) bool, each image's responsible flags.
            gt_bboxes (Tensor): (B, K, 4) gts, padded.
            gt_valid (Tensor): (B, K) bool, False on padding.

        Returns:
            tuple: ``gt_inds`` (B, N) long (0 negative, -1 ignored, k gt k-1)
            and ``max_overlaps`` (B, N): the best IoU over the gts of
            responsible priors, ``NOT_RESPONSIBLE_OVERLAP`` elsewhere; 0 for
            images without gts.
        """
        batch, num_priors = responsible.shape
        if num_priors == 0 or gt_bboxes.shape[1] == 0:
            gt_inds = responsible.new_full((batch, num_priors), NEGATIVE_GT_IND, dtype=torch.long)
            return gt_inds, priors.new_zeros((batch, num_priors))
        responsible = responsible.bool()
        overlaps = self.iou_calculator(gt_bboxes, priors.expand(batch, *priors.shape))
        padding = ~gt_valid[:, :, None]
        max_overlaps = overlaps.masked_fill(padding, PADDED_GT_OVERLAP).max(dim=1).values
        gt_inds = torch.where(self._negative(max_overlaps), NEGATIVE_GT_IND, IGNORED_GT_IND)

        overlaps = overlaps.masked_fill(~responsible[:, None, :], NOT_RESPONSIBLE_OVERLAP)
        overlaps = overlaps.masked_fill(padding, PADDED_GT_OVERLAP)  # (B, K, N)
        max_overlaps, argmax_overlaps = overlaps.max(dim=1)  # (B, N)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=2)  # (B, K)
        positive = (max_overlaps > self.pos_iou_thr) & responsible
        gt_inds = torch.where(positive, argmax_overlaps + 1, gt_inds)
        claimed = last_claiming_gt(overlaps, gt_max_overlaps, gt_argmax_overlaps,
                                   gt_valid & (gt_max_overlaps > self.min_pos_iou),
                                   self.gt_max_assign_all, prior_mask=responsible)
        gt_inds = torch.where(claimed > 0, claimed, gt_inds)

        # An image without gts: every prior negative, overlaps 0 (as assign()).
        has_gt = gt_valid.any(dim=1, keepdim=True)
        gt_inds = torch.where(has_gt, gt_inds, NEGATIVE_GT_IND)
        max_overlaps = torch.where(has_gt, max_overlaps, 0.)
        return gt_inds, max_overlaps
