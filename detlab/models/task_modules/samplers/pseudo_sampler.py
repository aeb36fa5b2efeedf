"""The sampler that keeps every assigned prior (single-stage detectors)."""
import torch
from mmengine.structures import InstanceData

from detlab.registry import TASK_UTILS
from ..assigners import AssignResult
from .sampling_result import SamplingResult


@TASK_UTILS.register_module()
class PseudoSampler:
    """Take all positives and all negatives; ignored priors are left out.

    ``avg_factor`` of the result is the number of positives (at least 1), the
    normaliser of RetinaNet's focal loss.
    """

    #: Keeping every assigned prior needs no per-image draw, so a head may
    #: build the targets of the whole batch at once instead of calling
    #: :meth:`sample` image by image.
    supports_batch = True

    def __init__(self, **kwargs) -> None:
        # Configs may pass sampler options that a pseudo sampler has no use for.
        pass

    def sample(self, assign_result: AssignResult, pred_instances: InstanceData,
               gt_instances: InstanceData, *args, **kwargs) -> SamplingResult:
        """Turn an assignment into index sets.

        Args:
            assign_result (AssignResult): Assignment of the N priors.
            pred_instances (InstanceData): ``priors`` (N, 4).
            gt_instances (InstanceData): ``bboxes`` (K, 4) and ``labels``.

        Returns:
            SamplingResult: positives are priors with ``gt_inds > 0``,
            negatives those with ``gt_inds == 0``.
        """
        priors = pred_instances.priors
        pos_inds = torch.nonzero(assign_result.pos_mask, as_tuple=False).squeeze(-1)
        neg_inds = torch.nonzero(assign_result.neg_mask, as_tuple=False).squeeze(-1)
        gt_flags = priors.new_zeros(priors.shape[0], dtype=torch.uint8)
        return SamplingResult(
            pos_inds=pos_inds,
            neg_inds=neg_inds,
            priors=priors,
            gt_bboxes=gt_instances.bboxes,
            assign_result=assign_result,
            gt_flags=gt_flags,
            avg_factor_with_neg=False)
