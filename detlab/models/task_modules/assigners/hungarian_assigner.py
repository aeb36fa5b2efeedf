"""HungarianAssigner: one-to-one matching of predictions to ground truth (DETR)."""
from typing import List, Optional, Union

import torch
from mmengine.structures import InstanceData
from scipy.optimize import linear_sum_assignment

from detlab.registry import TASK_UTILS
from .assign_result import IGNORED_GT_IND, NEGATIVE_GT_IND, NO_LABEL, AssignResult


@TASK_UTILS.register_module()
class HungarianAssigner:
    """Each gt gets the prediction that minimises the summed match costs.

    The cost matrix (num_preds, num_gts) is the sum of ``match_costs``; scipy's
    ``linear_sum_assignment`` solves it on the CPU. Matched predictions get
    ``gt_inds`` = gt index + 1 and the gt's label, the others
    ``NEGATIVE_GT_IND`` and ``NO_LABEL``. It assigns one image at a time: the
    matching is a solve on the host.

    Args:
        match_costs (dict | list[dict]): Costs built from ``TASK_UTILS``.
    """
    def __init__(self, match_costs: Union[List[dict], dict]) -> None:
        if isinstance(match_costs, dict):
            match_costs = [match_costs]
        if not match_costs:
            raise ValueError('HungarianAssigner: match_costs must not be empty')
        self.match_costs = [TASK_UTILS.build(match_cost) for match_cost in match_costs]

    def assign(self, pred_instances: InstanceData, gt_instances: InstanceData,
               img_meta: Optional[dict] = None, **kwargs) -> AssignResult:
        """Match one image's predictions to its gts.

        Args:
            pred_instances (InstanceData): ``scores`` (N, C) logits and
                ``bboxes`` (N, 4) ``x1, y1, x2, y2`` in pixels (or what the
                costs read).
            gt_instances (InstanceData): ``labels`` (G,), ``bboxes`` (G, 4).
            img_meta (dict, optional): Holds ``img_shape`` for box costs.
        """
        num_gts, num_preds = len(gt_instances), len(pred_instances)
        gt_labels = gt_instances.labels
        device = gt_labels.device
        assigned_gt_inds = torch.full((num_preds, ), IGNORED_GT_IND, dtype=torch.long,
                                      device=device)
        assigned_labels = torch.full((num_preds, ), NO_LABEL, dtype=torch.long, device=device)
        if num_gts == 0 or num_preds == 0:
            if num_gts == 0:
                assigned_gt_inds[:] = NEGATIVE_GT_IND
            return AssignResult(num_gts, assigned_gt_inds, None, labels=assigned_labels)
        cost = torch.stack([
            match_cost(pred_instances=pred_instances, gt_instances=gt_instances,
                       img_meta=img_meta) for match_cost in self.match_costs
        ]).sum(dim=0)
        matched_row_inds, matched_col_inds = linear_sum_assignment(cost.detach().cpu())
        matched_row_inds = torch.from_numpy(matched_row_inds).to(device)
        matched_col_inds = torch.from_numpy(matched_col_inds).to(device)
        assigned_gt_inds[:] = NEGATIVE_GT_IND
        assigned_gt_inds[matched_row_inds] = matched_col_inds + 1
        assigned_labels[matched_row_inds] = gt_labels[matched_col_inds]
        return AssignResult(num_gts, assigned_gt_inds, None, labels=assigned_labels)
