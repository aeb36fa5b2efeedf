"""Knowledge-distillation loss: KL divergence between softened class distributions."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from .utils import resolve_reduction, weighted_loss


@weighted_loss
def knowledge_distillation_kl_div_loss(pred: Tensor,
                                       soft_label: Tensor,
                                       T: int,
                                       detach_target: bool = True) -> Tensor:
    """``T^2 * mean_c KL(softmax(soft_label / T) || softmax(pred / T))`` per row.

    Args:
        pred (Tensor): (N, C) student logits.
        soft_label (Tensor): (N, C) teacher logits.
        T (int): Temperature.
        detach_target (bool): Keep gradients out of ``soft_label``.

    Returns:
        Tensor: (N,) loss.
    """
    if pred.shape != soft_label.shape:
        raise AssertionValueError(f'knowledge_distillation_kl_div_loss: pred {tuple(pred.shape)} '
                                  f'and soft_label {tuple(soft_label.shape)} must have the same '
                                  'shape')
    target = F.softmax(soft_label / T, dim=1)
    if detach_target:
        target = target.detach()
    kl = F.kl_div(F.log_softmax(pred / T, dim=1), target, reduction='none')
    return kl.mean(1) * (T * T)


@MODELS.register_module()
class KnowledgeDistillationKLDivLoss(nn.Module):
    """KL-divergence distillation loss.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        T (int): Temperature, >= 1. Defaults to 10.
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0, T: int = 10) -> None:
        super().__init__()
        if T < 1:
            raise AssertionValueError(f'KnowledgeDistillationKLDivLoss: T must be >= 1, got {T}')
        resolve_reduction('KnowledgeDistillationKLDivLoss', reduction, None, None)
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.T = T

    def forward(self,
                pred: Tensor,
                soft_label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Distillation loss of a batch.

        Args:
            pred (Tensor): (N, C) student logits.
            soft_label (Tensor): (N, C) teacher logits.
            weight (Tensor, optional): (N,) per-sample weight.
            avg_factor (float, optional): Divisor of the mean.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; (N,) for ``'none'``.
        """
        reduction = resolve_reduction('KnowledgeDistillationKLDivLoss', self.reduction,
                                      reduction_override, avg_factor)
        return self.loss_weight * knowledge_distillation_kl_div_loss(
            pred, soft_label, weight, reduction=reduction, avg_factor=avg_factor, T=self.T)
