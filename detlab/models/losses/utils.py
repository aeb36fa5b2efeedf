"""Weighting and reduction shared by detlab's losses (MMDetection semantics)."""
import functools
from typing import Callable, Optional

import torch
from torch import Tensor

from detlab.structures.errors import AssertionValueError

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
        raise AssertionValueError(f'{owner}: reduction must be one of {REDUCTIONS}, got '
                                  f'{reduction!r}')


def check_avg_factor(owner: str, reduction: str, avg_factor: Optional[float]) -> None:
    """Refuse ``avg_factor`` with ``reduction='sum'``, whatever the input.

    ``avg_factor`` only divides a mean; with a sum it would be silently
    dropped. Losses call this before any shortcut (empty input, all-zero
    weights), so the refusal does not depend on the batch.
    """
    if avg_factor is not None and reduction == 'sum':
        raise AssertionValueError(f"{owner}: avg_factor can only be used with reduction 'mean' or "
                                  f"'none', got reduction='sum' and avg_factor={avg_factor}")


def resolve_reduction(owner: str, reduction: str, reduction_override: Optional[str],
                      avg_factor: Optional[float]) -> str:
    """The reduction a loss call uses, checked together with ``avg_factor``.

    Args:
        owner (str): Name of the loss, for the messages.
        reduction (str): The loss's configured reduction.
        reduction_override (str, optional): The call's override.
        avg_factor (float, optional): The call's average factor.

    Returns:
        str: ``reduction_override`` if given, else ``reduction``.
    """
    check_reduction(owner, reduction)
    check_reduction(owner, reduction_override, allow_none=True)
    resolved = reduction_override if reduction_override else reduction
    check_avg_factor(owner, resolved, avg_factor)
    return resolved


def reduce_loss(loss: Tensor, reduction: str) -> Tensor:
    """Reduce an element-wise loss.

    The mean of an empty loss is a zero still connected to the graph (torch
    would give NaN), so a batch without samples trains on.

    Args:
        loss (Tensor): Element-wise loss, any shape.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.

    Returns:
        Tensor: ``loss`` itself, its mean or its sum.
    """
    check_reduction('reduce_loss', reduction)
    if reduction == 'mean':
        return loss.mean() if loss.numel() > 0 else zero_loss_like(loss)
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
    check_reduction('weight_reduce_loss', reduction)
    check_avg_factor('weight_reduce_loss', reduction, avg_factor)
    if reduction == 'mean':
        return loss.sum() / (avg_factor + AVG_FACTOR_EPS)
    return loss


def weighted_loss(loss_func: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Give an element-wise loss ``weight``, ``reduction`` and ``avg_factor``.

    ``loss_func(pred, target, **kwargs)`` returns the element-wise loss; the
    wrapped function is ``loss_func(pred, target, weight=None,
    reduction='mean', avg_factor=None, **kwargs)``, MMDetection's signature.
    """

    @functools.wraps(loss_func)
    def wrapper(pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                reduction: str = 'mean',
                avg_factor: Optional[float] = None,
                **kwargs) -> Tensor:
        loss = loss_func(pred, target, **kwargs)
        return weight_reduce_loss(loss, weight, reduction, avg_factor)

    return wrapper


def zero_loss_like(pred: Tensor) -> Tensor:
    """A zero scalar loss still connected to ``pred``'s graph.

    Returning a fresh ``tensor(0.)`` would detach the loss, and distributed
    training then finds parameters that received no gradient.
    """
    return pred.sum() * 0


def weights_all_zero(weight: Optional[Tensor]) -> bool:
    """Whether to take MMDetection's early exit for a batch without a positive weight
    (:func:`zero_weight_loss`): on the CPU, as MMDetection; elsewhere never, since the test
    reads the weights back and makes the host wait for the device's queue, and the full loss
    of all-zero weights is a zero tied to ``pred`` as well (its sign may differ)."""
    return weight is not None and weight.device.type == 'cpu' and not torch.any(weight > 0)


def zero_weight_loss(pred: Tensor, weight: Tensor) -> Tensor:
    """The loss of a batch whose weights are all zero: a zero tied to ``pred``.

    Args:
        pred (Tensor): (N, K) predictions.
        weight (Tensor): (N, K) or (N,) weights, none of them positive.
    """
    if pred.dim() == weight.dim() + 1:
        weight = weight.unsqueeze(1)
    return (pred * weight).sum()
