"""Dice loss (Milletari et al., "V-Net", 2016) with MMDetection's config keys."""
from typing import Optional

import torch
from torch import Tensor, nn

from detlab.registry import MODELS
from .utils import weight_reduce_loss

REDUCTIONS = (None, 'none', 'mean', 'sum')


def dice_loss(pred: Tensor,
              target: Tensor,
              weight: Optional[Tensor] = None,
              eps: float = 1e-3,
              reduction: str = 'mean',
              naive_dice: bool = False,
              avg_factor: Optional[float] = None) -> Tensor:
    """``1 - dice`` per instance, weighted and reduced.

    V-Net's dice is ``2 * sum(p * t) / (sum(p^2) + eps + sum(t^2) + eps)``;
    the naive one is ``(2 * sum(p * t) + eps) / (sum(p) + sum(t) + eps)``.

    Args:
        pred (Tensor): (N, *) probabilities.
        target (Tensor): (N, *) binary targets, the shape of ``pred``.
        weight (Tensor, optional): (N,) per-instance weights.
        eps (float): Keeps the ratio finite for empty masks.
        reduction (str): 'none', 'mean' or 'sum'.
        naive_dice (bool): First powers in the denominator.
        avg_factor (float, optional): Divisor of the sum in place of N for 'mean'.

    Returns:
        Tensor: (N,) with reduction 'none', else a scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f'dice_loss: pred {tuple(pred.shape)} and target '
                         f'{tuple(target.shape)} must have the same shape')
    pred = pred.flatten(1)
    target = target.flatten(1).float()
    overlap = torch.sum(pred * target, 1)
    if naive_dice:
        dice = (2 * overlap + eps) / (pred.sum(1) + target.sum(1) + eps)
    else:
        dice = 2 * overlap / (((pred * pred).sum(1) + eps) + ((target * target).sum(1) + eps))
    loss = 1 - dice
    if weight is not None and weight.shape != loss.shape:
        raise ValueError(f'dice_loss: weight must have shape {tuple(loss.shape)} (one per '
                         f'instance), got {tuple(weight.shape)}')
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


@MODELS.register_module()
class DiceLoss(nn.Module):
    """Dice loss of mask logits (or probabilities with ``activate=False``).

    Args:
        use_sigmoid (bool): Sigmoid activation; only True is supported (as MMDetection).
        activate (bool): Apply the sigmoid to ``pred`` here.
        reduction (str): 'none', 'mean' or 'sum'.
        naive_dice (bool): See :func:`dice_loss`.
        loss_weight (float): Multiplies the loss.
        eps (float): See :func:`dice_loss`.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 activate: bool = True,
                 reduction: str = 'mean',
                 naive_dice: bool = False,
                 loss_weight: float = 1.0,
                 eps: float = 1e-3) -> None:
        super().__init__()
        if activate and not use_sigmoid:
            raise ValueError('DiceLoss: activate=True needs use_sigmoid=True (no softmax '
                             'activation is implemented)')
        if reduction not in REDUCTIONS[1:]:
            raise ValueError(f"DiceLoss: reduction must be 'none', 'mean' or 'sum', got "
                             f'{reduction!r}')
        self.use_sigmoid = use_sigmoid
        self.activate = activate
        self.reduction = reduction
        self.naive_dice = naive_dice
        self.loss_weight = loss_weight
        self.eps = eps

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                reduction_override: Optional[str] = None,
                avg_factor: Optional[float] = None) -> Tensor:
        """Loss of (N, *) ``pred`` against (N, *) ``target``; see :func:`dice_loss`."""
        if reduction_override not in REDUCTIONS:
            raise ValueError(f"DiceLoss: reduction_override must be None, 'none', 'mean' or "
                             f"'sum', got {reduction_override!r}")
        reduction = reduction_override or self.reduction
        if self.activate:
            pred = pred.sigmoid()
        return self.loss_weight * dice_loss(pred, target, weight, eps=self.eps,
                                            reduction=reduction, naive_dice=self.naive_dice,
                                            avg_factor=avg_factor)
