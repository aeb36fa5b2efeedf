"""RTMDet's dynamic soft-label assignment (Lyu et al., "RTMDet: An Empirical
Study of Designing Real-Time Object Detectors", 2022), for a whole batch.

A prior is a candidate when its point lies strictly inside some gt box (as
MMDetection does on the tensor boxes its data preprocessor hands the head). For
candidate p and gt k the matching cost is

* a soft classification cost: the BCE of the predicted logits against the
  soft target "IoU(pred_p, gt_k) at class label_k, 0 elsewhere", each class
  weighted by ``|target - sigmoid(logit)|^2``, summed over classes;
* ``-log(IoU + EPS) * iou_weight``;
* a centre prior ``10 ** (distance(point, gt centre) / stride - soft_center_radius)``,
  the gt centre being its mask's centre of mass when the gts have masks
  (RTMDet-Ins), else its box's centre.

Each gt takes its ``dynamic_k`` cheapest candidates, ``dynamic_k`` being the
integer part of the sum of its ``topk`` largest candidate IoUs (at least 1);
a prior taken by several gts keeps only its cheapest gt over all gts.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from .assign_result import (IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult,
                            assign_single_image, candidate_columns, dynamic_k_matching)

#: Added to IoUs under the log of the IoU cost, as MMDetection.
EPS = 1.0e-7
#: ``max_overlaps`` of priors that are not positive, as MMDetection.
INF = 100000000


def center_of_mass(masks: Tensor, eps: float = EPS) -> Tensor:
    """(K, 2) x, y centre of mass of (K, H, W) masks, in pixel indices
    (pixel (i, j) at x = j, y = i, as MMDetection); (0, 0) for empty masks."""
    _, height, width = masks.shape
    rows = torch.arange(height, device=masks.device)[:, None]
    cols = torch.arange(width, device=masks.device)
    normalizer = masks.sum(dim=(1, 2)).float().clamp(min=eps)
    center_y = (masks * rows).sum(dim=(1, 2)) / normalizer
    center_x = (masks * cols).sum(dim=(1, 2)) / normalizer
    return torch.stack([center_x, center_y], dim=1)


@TASK_UTILS.register_module()
class DynamicSoftLabelAssigner:
    """Dynamic soft-label assigner with MMDetection's config keys.

    Args:
        soft_center_radius (float): Distance, in strides, at which the centre
            prior costs 1. Defaults to 3.0.
        topk (int): Candidates whose IoUs set each gt's ``dynamic_k``.
            Defaults to 13.
        iou_weight (float): Scale of the IoU cost. Defaults to 3.0.
        iou_calculator (dict): TASK_UTILS config of the IoU calculator.
    """

    def __init__(self,
                 soft_center_radius: float = 3.0,
                 topk: int = 13,
                 iou_weight: float = 3.0,
                 iou_calculator: dict = dict(type='BboxOverlaps2D')) -> None:
        if topk < 1:
            raise ValueError(f'DynamicSoftLabelAssigner: topk must be >= 1, got {topk}')
        self.soft_center_radius = soft_center_radius
        self.topk = topk
        self.iou_weight = iou_weight
        self.iou_calculator = TASK_UTILS.build(iou_calculator)

    @property
    def max_matches_per_gt(self) -> int:
        """Most priors one gt is assigned: its ``dynamic_k`` never exceeds
        ``topk`` (a sum of ``topk`` IoUs), and a prior goes to one gt only."""
        return self.topk

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               gt_instances_ignore: Optional[InstanceData] = None, **kwargs) -> AssignResult:
        """Assign one image (MMDetection's interface).

        Args:
            pred_instances (InstanceData): ``priors`` (N, 4) x, y, stride_w,
                stride_h; ``bboxes`` (N, 4) decoded predictions; ``scores``
                (N, C) class logits.
            gt_instances (InstanceData): ``bboxes`` (K, 4), ``labels`` (K,),
                optionally ``masks`` (K, H, W) tensor (their centres of mass
                are the gt centres).
            gt_instances_ignore (InstanceData, optional): Not used (as MMDetection).

        Returns:
            AssignResult: ``gt_inds`` (0 negative, k matched to gt k-1),
            ``max_overlaps`` (the matched IoU; ``-INF`` unless positive) and
            ``labels`` (``NO_LABEL`` unless positive).
        """
        gt_centers = None
        if 'masks' in gt_instances:
            gt_centers = center_of_mass(gt_instances.masks)[None].to(pred_instances.priors)
        return assign_single_image(self.assign_batch, pred_instances, gt_instances,
                                   gt_centers=gt_centers)

    @torch.no_grad()
    def assign_batch(self, priors: Tensor, decoded_bboxes: Tensor, pred_scores: Tensor,
                     prior_valid: Tensor, gt_bboxes: Tensor, gt_labels: Tensor,
                     gt_valid: Tensor, gt_centers: Optional[Tensor] = None
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """Assign every image of a batch at once; image by image the result is
        :meth:`assign`'s on that image's valid priors and real gts.

        Args:
            priors (Tensor): (P, 4) x, y, stride_w, stride_h, shared by the images.
            decoded_bboxes (Tensor): (B, P, 4) predicted boxes.
            pred_scores (Tensor): (B, P, C) class logits.
            prior_valid (Tensor): (B, P) bool; the other priors are left out
                (``IGNORED_GT_IND``), as MMDetection leaves out priors outside
                the image.
            gt_bboxes (Tensor): (B, K, 4) gts padded to K.
            gt_labels (Tensor): (B, K) long labels (any value on padding).
            gt_valid (Tensor): (B, K) bool, False on padding.
            gt_centers (Tensor, optional): (B, K, 2) x, y gt centres for the
                centre prior (masks' centres of mass); the boxes' centres when None.

        Returns:
            tuple: ``gt_inds`` (B, P) long (``NEGATIVE_GT_IND``, k for gt k-1,
            ``IGNORED_GT_IND`` where ``prior_valid`` is False), ``max_overlaps``
            (B, P) the matched IoU (``-INF`` unless positive) and ``labels``
            (B, P) long (``NO_LABEL`` unless positive).
        """
        batch, num_priors = prior_valid.shape
        num_gts = gt_bboxes.shape[1]
        gt_inds = torch.where(prior_valid, NEGATIVE_GT_IND, IGNORED_GT_IND)
        max_overlaps = decoded_bboxes.new_full((batch, num_priors), -INF, dtype=torch.float32)
        labels = torch.full_like(gt_inds, NO_LABEL)
        if num_gts == 0 or num_priors == 0:
            return gt_inds, max_overlaps, labels

        gt_valid_pairs = gt_valid[:, None, :]  # (B, 1, K)
        x, y = priors[None, :, None, 0], priors[None, :, None, 1]  # (1, P, 1)
        inside = ((x > gt_bboxes[:, None, :, 0]) & (x < gt_bboxes[:, None, :, 2])
                  & (y > gt_bboxes[:, None, :, 1]) & (y < gt_bboxes[:, None, :, 3]))
        candidate = (inside & gt_valid_pairs).any(dim=2) & prior_valid  # (B, P)
        columns = candidate_columns(candidate)  # (C,) indices, or every column
        if isinstance(columns, Tensor) and len(columns) == 0:
            return gt_inds, max_overlaps, labels
        priors = priors[columns]
        candidate = candidate[:, columns]
        pair_ok = candidate[:, :, None] & gt_valid_pairs  # (B, C, K)

        points = priors[:, :2]
        if gt_centers is None:
            gt_centers = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) / 2.0  # (B, K, 2)
        distance = (points[None, :, None, :] - gt_centers[:, None, :, :]).pow(2).sum(-1).sqrt() \
            / priors[None, :, None, 2]
        soft_center_prior = torch.pow(10, distance - self.soft_center_radius)

        ious = self.iou_calculator(decoded_bboxes[:, columns], gt_bboxes)  # (B, C, K)
        ious = torch.where(pair_ok, ious, 0.)
        iou_cost = -torch.log(ious + EPS) * self.iou_weight
        cls_cost = self._soft_cls_cost(pred_scores[:, columns].float(), gt_labels, ious)
        cost = torch.where(pair_ok, cls_cost + iou_cost + soft_center_prior, float('inf'))

        matching = dynamic_k_matching(cost, ious, pair_ok, self.topk)  # (B, C, K) bool
        positive = matching.any(dim=2)
        matched_gt = matching.to(torch.uint8).argmax(dim=2)  # (B, C)
        matched_iou = (matching * ious).sum(dim=2)
        gt_inds[:, columns] = torch.where(positive, matched_gt + 1, gt_inds[:, columns])
        max_overlaps[:, columns] = torch.where(positive, matched_iou.float(),
                                               max_overlaps[:, columns])
        labels[:, columns] = torch.where(positive, gt_labels.gather(1, matched_gt).long(),
                                         labels[:, columns])
        return gt_inds, max_overlaps, labels

    @staticmethod
    def _soft_cls_cost(logits: Tensor, gt_labels: Tensor, ious: Tensor) -> Tensor:
        """(B, P, K) soft classification cost of every (prior, gt) pair.

        The sum over classes splits into the part with target 0 for every
        class, ``sum_c softplus(x_c) * sigmoid(x_c)^2``, which does not
        depend on the gt, corrected at the gt's class ``l`` by the term with
        target IoU: ``BCE(x_l, iou) * |iou - sigmoid(x_l)|^2``. This is the
        (B, P, K) result without MMDetection's (P, K, C) intermediate.
        """
        zero_target = F.binary_cross_entropy_with_logits(
            logits, torch.zeros_like(logits), reduction='none') * logits.sigmoid().pow(2.0)
        index = gt_labels.clamp(min=0, max=logits.shape[-1] - 1)[:, None, :].expand(
            -1, logits.shape[1], -1)
        label_logits = logits.gather(2, index)  # (B, P, K)
        label_zero_target = zero_target.gather(2, index)
        soft_target = F.binary_cross_entropy_with_logits(
            label_logits, ious, reduction='none') * (ious - label_logits.sigmoid()).abs().pow(2.0)
        return zero_target.sum(dim=2, keepdim=True) - label_zero_target + soft_target
