"""Weighting and reduction shared by detlab's losses (MMDetection semantics)."""
from typing import Optional

import torch
from torch import Tensor

#: Reductions every loss understands.
REDUCTIONS = ('none', 'mean', 'sum')
#: Added to ``avg_factor`` so an average over zero samples stays finite.
AVG_FACTOR_EPS = torch.finfo(torch.float32).eps


def check_reduction(owner: str, reduction: Optional[str], allow_none: bool = False) -> None:
    """Fail clearly on an unknown reduction name.

    Args:
        owner (str): Name of the loss, for the message.
        reduction (str | None): The value to check.
        allow_none (bool): Whether None (no override) is accepted.
    """
    if reduction is None and allow_none:
        return
    if reduction not in REDUCTIONS:
        raise ValueError(f'{owner}: reduction must be one of {REDUCTIONS}, got {reduction!r}')


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Reduce an element-wise loss.

    Args:
        loss (Tensor): Element-wise loss, any shape.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.

    Returns:
        Tensor: ``loss`` itself, its mean or its sum.
    """
    check_reduction('reduce_loss', reduction)
    if reduction == 'mean':
        return loss.mean()
    if reduction == 'sum':
        return loss.sum()
    return loss


def weight_reduce_loss(loss: Tensor,
                       weight: Optional[Tensor] = None,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> Tensor:
    """Weight an element-wise loss, then reduce it.

    With ``avg_factor`` the mean is ``sum(loss * weight) / (avg_factor +
    eps)``: detectors divide by the number of positive samples, not by the
    number of elements.

    Args:
        loss (Tensor): Element-wise loss.
        weight (Tensor, optional): Element-wise weight, broadcastable to
            ``loss``.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor (float, optional): Divisor of the mean.

    Returns:
        Tensor: The weighted, reduced loss.
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == 'mean':
        return loss.sum() / (avg_factor + AVG_FACTOR_EPS)
    if reduction == 'none':
        return loss
    raise ValueError(f'weight_reduce_loss: avg_factor can only be used with reduction '
                     f"'mean' or 'none', got reduction={reduction!r}")


def zero_loss_like(pred: Tensor) -> Tensor:
    """A zero scalar loss still connected to ``pred``'s graph.

    Returning a fresh ``tensor(0.)`` would detach the loss, and distributed
    training then finds parameters that received no gradient.
    """
    return pred.sum() * 0
