"""L1 and Smooth L1 regression losses."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from detlab.registry import MODELS
from .utils import check_reduction, weight_reduce_loss, zero_loss_like


def smooth_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Element-wise Smooth L1: 0.5 * d^2 / beta where d < beta, else d - 0.5 * beta.

    Args:
        pred (Tensor): (N, ...) predictions.
        target (Tensor): Targets, same shape as ``pred``.
        beta (float): Where the loss turns from quadratic to linear; > 0.

    Returns:
        Tensor: Element-wise loss, same shape as ``pred``.
    """
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise absolute difference, same shape as ``pred``."""
    return torch.abs(pred - target)


class _RegressionLoss(nn.Module):
    """The common forward of element-wise regression losses."""

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        check_reduction(type(self).__name__, reduction)
        self.reduction = reduction
        self.loss_weight = loss_weight

    def elementwise_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Weighted, reduced loss.

        Args:
            pred (Tensor): (N, 4) (or any shape) predictions.
            target (Tensor): Targets, same shape as ``pred``.
            weight (Tensor, optional): Element-wise weight, same shape as
                ``pred`` or (N,) per sample.
            avg_factor (float, optional): Divisor of the mean (e.g. number
                of positives).
            reduction_override (str, optional): Use this reduction instead of
                ``self.reduction``.

        Returns:
            Tensor: The loss times ``loss_weight``; a scalar unless the
            reduction is ``'none'``. Empty inputs, or all-zero weights, give a
            zero that is still connected to ``pred``.
        """
        name = type(self).__name__
        check_reduction(name, reduction_override, allow_none=True)
        if pred.shape != target.shape:
            raise ValueError(f'{name}: pred {tuple(pred.shape)} and target '
                             f'{tuple(target.shape)} must have the same shape')
        if target.numel() == 0:
            return zero_loss_like(pred)
        if weight is not None and pred.dim() == weight.dim() + 1:
            weight = weight.unsqueeze(-1)
        if weight is not None and not torch.any(weight > 0):
            return (pred * weight).sum()
        reduction = reduction_override if reduction_override else self.reduction
        loss = self.elementwise_loss(pred, target)
        loss = weight_reduce_loss(loss, weight, reduction, avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class SmoothL1Loss(_RegressionLoss):
    """Smooth L1 loss.

    Args:
        beta (float): Quadratic-to-linear threshold, > 0. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def __init__(self,
                 beta: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__(reduction=reduction, loss_weight=loss_weight)
        if beta <= 0:
            raise ValueError(f'SmoothL1Loss: beta must be > 0, got {beta}')
        self.beta = beta

    def elementwise_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(pred, target, beta=self.beta)


@MODELS.register_module()
class L1Loss(_RegressionLoss):
    """L1 loss.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def elementwise_loss(self, pred: Tensor, target: Tensor) -> Tensor:
        return l1_loss(pred, target)
