"""L1 and Smooth L1 regression losses."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from .utils import resolve_reduction, weighted_loss, weights_all_zero, zero_weight_loss


def check_same_shape(owner: str, pred: Tensor, target: Tensor) -> None:
    """Fail clearly when an element-wise loss gets tensors of different shapes."""
    if pred.shape != target.shape:
        raise AssertionValueError(f'{owner}: pred {tuple(pred.shape)} and target '
                                  f'{tuple(target.shape)} must have the same shape')


@weighted_loss
def smooth_l1_loss(pred: Tensor, target: Tensor, beta: float = 1.0) -> Tensor:
    """Element-wise Smooth L1: 0.5 * d^2 / beta where d < beta, else d - 0.5 * beta.

    Wrapped by ``weighted_loss``: also takes ``weight``, ``reduction`` and
    ``avg_factor``.

    Args:
        pred (Tensor): (N, ...) predictions.
        target (Tensor): Targets, same shape as ``pred``.
        beta (float): Where the loss turns from quadratic to linear; > 0.

    Returns:
        Tensor: Element-wise loss, same shape as ``pred``.
    """
    if beta <= 0:
        raise AssertionValueError(f'smooth_l1_loss: beta must be > 0, got {beta}')
    check_same_shape('smooth_l1_loss', pred, target)
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


@weighted_loss
def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Element-wise absolute difference, same shape as ``pred``.

    Wrapped by ``weighted_loss``: also takes ``weight``, ``reduction`` and
    ``avg_factor``.
    """
    check_same_shape('l1_loss', pred, target)
    return torch.abs(pred - target)


class _ElementwiseRegressionLoss(nn.Module):
    """The common forward of L1 and Smooth L1: weights, reduction, avg_factor."""

    def __init__(self, reduction: str = 'mean', loss_weight: float = 1.0) -> None:
        super().__init__()
        resolve_reduction(type(self).__name__, reduction, None, None)
        self.reduction = reduction
        self.loss_weight = loss_weight

    def elementwise_loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                         reduction: str, avg_factor: Optional[float]) -> Tensor:
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
                of positives); refused with reduction ``'sum'``.
            reduction_override (str, optional): Use this reduction instead of
                ``self.reduction``.

        Returns:
            Tensor: The loss times ``loss_weight``; a scalar unless the
            reduction is ``'none'``. Empty inputs, or all-zero weights, give a
            zero that is still connected to ``pred``.
        """
        name = type(self).__name__
        reduction = resolve_reduction(name, self.reduction, reduction_override, avg_factor)
        check_same_shape(name, pred, target)
        if weights_all_zero(weight):
            return zero_weight_loss(pred, weight)
        if weight is not None and pred.dim() == weight.dim() + 1:
            weight = weight.unsqueeze(-1)
        loss = self.elementwise_loss(pred, target, weight, reduction, avg_factor)
        return self.loss_weight * loss


@MODELS.register_module()
class SmoothL1Loss(_ElementwiseRegressionLoss):
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
            raise AssertionValueError(f'SmoothL1Loss: beta must be > 0, got {beta}')
        self.beta = beta

    def elementwise_loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                         reduction: str, avg_factor: Optional[float]) -> Tensor:
        return smooth_l1_loss(pred, target, weight, reduction=reduction, avg_factor=avg_factor,
                              beta=self.beta)


@MODELS.register_module()
class L1Loss(_ElementwiseRegressionLoss):
    """L1 loss.

    Args:
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    def elementwise_loss(self, pred: Tensor, target: Tensor, weight: Optional[Tensor],
                         reduction: str, avg_factor: Optional[float]) -> Tensor:
        return l1_loss(pred, target, weight, reduction=reduction, avg_factor=avg_factor)
