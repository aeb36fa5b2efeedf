"""YOLOX's SimOTA assignment (Ge et al., "YOLOX: Exceeding YOLO Series in
2021"), for a whole batch.

A prior (the centre of its cell, with its stride) is a candidate when it lies
strictly inside some gt box or inside some gt's centre square (``center_radius``
strides on each side of the gt centre). For candidate p and gt k the matching
cost is

* ``cls_weight *`` the binary cross-entropy of the predicted class
  probabilities (``sqrt(class * objectness)``) against gt k's one-hot label,
  summed over classes;
* ``iou_weight * -log(IoU(pred_p, gt_k) + EPS)``;
* ``INF`` unless p lies both inside gt k and inside its centre square.

Each gt takes its ``dynamic_k`` cheapest candidates, ``dynamic_k`` being the
integer part of the sum of its ``candidate_topk`` largest candidate IoUs (at
least 1); a prior taken by several gts keeps only its cheapest gt.

On the CPU the classification cost is computed for the candidate columns only
(:func:`candidate_columns`); elsewhere for every column, so that nothing waits
for the device's values: the same assignment either way.
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from .assign_result import (IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult,
                            assign_single_image, candidate_columns, dynamic_k_matching)

#: Cost added to pairs outside the gt box or its centre square, and the
#: ``max_overlaps`` of priors that are not positive, as MMDetection.
INF = 100000.0
#: Added to IoUs under the log of the IoU cost, as MMDetection.
EPS = 1.0e-7
#: At most this many (prior, gt, class) cross-entropies are held at once by the
#: classification cost (4 bytes each: 64 MiB), whatever the batch.
CLS_COST_CHUNK_ELEMENTS = 2 ** 24


@TASK_UTILS.register_module()
class SimOTAAssigner:
    """SimOTA assigner with MMDetection's config keys.

    Args:
        center_radius (float): Half side, in strides, of each gt's centre
            square. Defaults to 2.5.
        candidate_topk (int): Candidates whose IoUs set each gt's
            ``dynamic_k``. Defaults to 10.
        iou_weight (float): Scale of the IoU cost. Defaults to 3.0.
        cls_weight (float): Scale of the classification cost. Defaults to 1.0.
        iou_calculator (dict): TASK_UTILS config of the IoU calculator.
    """

    #: On the CPU, compute the classification cost on candidate columns only
    #: (:func:`candidate_columns`); False takes the other devices' path there too.
    compact_on_cpu = True

    def __init__(self,
                 center_radius: float = 2.5,
                 candidate_topk: int = 10,
                 iou_weight: float = 3.0,
                 cls_weight: float = 1.0,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        if candidate_topk < 1:
            raise ValueError(f'SimOTAAssigner: candidate_topk must be >= 1, got {candidate_topk}')
        self.center_radius = center_radius
        self.candidate_topk = candidate_topk
        self.iou_weight = iou_weight
        self.cls_weight = cls_weight
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign one image (MMDetection's interface).

        Args:
            pred_instances (InstanceData): ``priors`` (N, 4) cell centre x, y
                and stride_w, stride_h; ``bboxes`` (N, 4) decoded predictions;
                ``scores`` (N, C) class probabilities.
            gt_instances (InstanceData): ``bboxes`` (K, 4), ``labels`` (K,).
            gt_instances_ignore (InstanceData, optional): Not used (as MMDetection).

        Returns:
            AssignResult: ``gt_inds`` (0 negative, k matched to gt k-1),
            ``max_overlaps`` (the matched IoU; ``-INF`` unless positive, 0
            everywhere when nothing can match) and ``labels`` (``NO_LABEL``
            unless positive).
        """
        return assign_single_image(self.assign_batch, pred_instances, gt_instances)

    @torch.no_grad()
    def assign_batch(self, priors: Tensor, decoded_bboxes: Tensor, pred_scores: Tensor,
                     prior_valid: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
                     gt_valid: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign every image of a batch at once; image by image the result is
        :meth:`assign`'s on that image's real gts.

        Args:
            priors (Tensor): (P, 4) cell centre x, y, stride_w, stride_h,
                shared by the images.
            decoded_bboxes (Tensor): (B, P, 4) predicted boxes.
            pred_scores (Tensor): (B, P, C) class probabilities.
            prior_valid (Tensor): (B, P) bool; the other priors are left out
                (``IGNORED_GT_IND``). YOLOX's head passes every prior.
            gt_bboxes (Tensor): (B, K, 4) gts padded to K.
            gt_labels (Tensor): (B, K) long labels (any value on padding).
            gt_valid (Tensor): (B, K) bool, False on padding.

        Returns:
            tuple: ``gt_inds`` (B, P) long (``NEGATIVE_GT_IND``, k for gt k-1,
            ``IGNORED_GT_IND`` where ``prior_valid`` is False), ``max_overlaps``
            (B, P) the matched IoU (``-INF`` unless positive) and ``labels``
            (B, P) long (``NO_LABEL`` unless positive).
        """
        batch, num_priors = decoded_bboxes.shape[:2]
        num_gts = gt_bboxes.shape[1]
        gt_inds = torch.where(prior_valid, NEGATIVE_GT_IND, IGNORED_GT_IND)
        max_overlaps = decoded_bboxes.new_full((batch, num_priors), -INF, dtype=torch.float32)
        labels = torch.full_like(gt_inds, NO_LABEL)
        if num_gts == 0 or num_priors == 0:
            return gt_inds, max_overlaps, labels

        in_gts, in_centers = self._in_gt_and_in_center(priors, gt_bboxes)
        gt_valid_pairs = gt_valid[:, None, :]
        in_gts, in_centers = in_gts & gt_valid_pairs, in_centers & gt_valid_pairs
        candidate = (in_gts | in_centers).any(dim=2) & prior_valid  # (B, P)
        pair_ok = candidate[:, :, None] & gt_valid_pairs  # (B, P, K)

        ious = self.iou_calculator(decoded_bboxes, gt_bboxes)  # (B, P, K)
        ious = torch.where(pair_ok, ious, 0.)
        iou_cost = -torch.log(ious + EPS)
        cls_cost = self._cls_cost(pred_scores, gt_labels,
                                  candidate_columns(candidate, self.compact_on_cpu))
        cost = (cls_cost * self.cls_weight + iou_cost * self.iou_weight
                + (~(in_gts & in_centers)) * INF)
        cost = torch.where(pair_ok, cost, float('inf'))

        matching = dynamic_k_matching(cost, ious, pair_ok, self.candidate_topk)  # (B, P, K) bool
        positive = matching.any(dim=2)
        matched_gt = matching.to(torch.uint8).argmax(dim=2)  # (B, P)
        matched_iou = (matching * ious).sum(dim=2)
        gt_inds = torch.where(positive, matched_gt + 1, gt_inds)
        max_overlaps = torch.where(positive, matched_iou.float(), max_overlaps)
        labels = torch.where(positive, gt_labels.gather(1, matched_gt).long(), labels)
        return gt_inds, max_overlaps, labels

    def _in_gt_and_in_center(self, priors: Tensor, gt_bboxes: Tensor) -> Tuple[Tensor, Tensor]:
        """(B, P, K) bool each: the prior's point strictly inside gt k's box,
        and strictly inside its centre square."""
        x, y = priors[None, :, None, 0], priors[None, :, None, 1]  # (1, P, 1)
        stride_x, stride_y = priors[None, :, None, 2], priors[None, :, None, 3]
        x1, y1 = gt_bboxes[:, None, :, 0], gt_bboxes[:, None, :, 1]  # (B, 1, K)
        x2, y2 = gt_bboxes[:, None, :, 2], gt_bboxes[:, None, :, 3]
        in_gts = (x - x1 > 0) & (y - y1 > 0) & (x2 - x > 0) & (y2 - y > 0)
        center_x, center_y = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        in_centers = ((x - (center_x - self.center_radius * stride_x) > 0)
                      & (y - (center_y - self.center_radius * stride_y) > 0)
                      & ((center_x + self.center_radius * stride_x) - x > 0)
                      & ((center_y + self.center_radius * stride_y) - y > 0))
        return in_gts, in_centers

    @staticmethod
    def _cls_cost(pred_scores: Tensor, gt_labels: Tensor,
                  columns: Union[Tensor, slice]) -> Tensor:
        """(B, P, K) classification cost of every (prior, gt) pair in the prior
        ``columns`` (indices, or every column); 0 in the other columns.

        The per-class cross-entropies are summed over classes as one row each,
        which gives MMDetection's sums to the bit (in fp32 with autocast off, as
        MMDetection). The priors are taken in chunks of at most
        ``CLS_COST_CHUNK_ELEMENTS`` (prior, gt, class) triples.
        """
        batch, num_priors, num_classes = pred_scores.shape
        num_gts = gt_labels.shape[1]
        scores = pred_scores[:, columns].float()  # (B, P', C)
        classes = torch.arange(num_classes, device=pred_scores.device)
        onehot = (gt_labels.clamp(0, num_classes - 1)[..., None] == classes).float()  # (B, K, C)
        chunk = max(1, CLS_COST_CHUNK_ELEMENTS // max(batch * num_gts * num_classes, 1))
        with torch.autocast(pred_scores.device.type, enabled=False):
            pair_cost = torch.cat([
                F.binary_cross_entropy(
                    part[:, :, None, :].expand(-1, -1, num_gts, -1),
                    onehot[:, None].expand(-1, part.shape[1], -1, -1),
                    reduction='none').sum(-1)  # (B, chunk, K)
                for part in scores.split(chunk, dim=1)], dim=1)
        if not isinstance(columns, slice):
            pair_cost = pair_cost.new_zeros((batch, num_priors, num_gts)).index_copy_(
                1, columns, pair_cost)
        return pair_cost.to(pred_scores.dtype)
