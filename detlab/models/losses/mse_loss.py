"""Mean squared error loss."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from .smooth_l1_loss import check_same_shape
from .utils import resolve_reduction, weighted_loss


@weighted_loss
def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise squared difference, same shape as ``pred``.

    Wrapped by ``weighted_loss``: also takes ``weight``, ``reduction`` and
    ``avg_factor``.
    """
    check_same_shape('mse_loss', pred, target)
    return F.mse_loss(pred, target, reduction='none')


@MODELS.register_module()
class MSELoss(nn.Module):
    """Mean squared error loss.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        resolve_reduction('MSELoss', reduction, None, None)
        self.reduction = reduction
        self.loss_weight = loss_weight

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Weighted, reduced squared error.

        Args:
            pred (Tensor): Predictions, any shape.
            target (Tensor): Targets, same shape as ``pred``.
            weight (Tensor, optional): Element-wise weight, broadcastable to
                ``pred``.
            avg_factor (float, optional): Divisor of the mean.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; a scalar unless the
            reduction is ``'none'``.
        """
        reduction = resolve_reduction('MSELoss', self.reduction, reduction_override, avg_factor)
        return self.loss_weight * mse_loss(pred, target, weight, reduction=reduction,
                                           avg_factor=avg_factor)
