"""Sigmoid focal loss (RetinaNet, https://arxiv.org/abs/1708.02002)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from .utils import check_reduction, weight_reduce_loss, zero_loss_like


def labels_to_one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Turn (N,) labels in [0, C] into (N, C) binary targets; label C is background.

    Raises:
        ValueError: A label outside [0, C].
    """
    if labels.numel() > 0 and (labels.min() < 0 or labels.max() > num_classes):
        raise ValueError(f'FocalLoss: labels must lie in [0, {num_classes}] ({num_classes} = '
                         f'background), got min {int(labels.min())}, max {int(labels.max())}')
    return F.one_hot(labels.long(), num_classes=num_classes + 1)[:, :num_classes]


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       activated: bool = False) -> Tensor:
    """Element-wise focal loss of independent per-class sigmoids.

    ``loss = -alpha_t * (1 - p_t) ** gamma * log(p_t)`` where ``p_t`` is the
    probability given to the true binary outcome, ``alpha_t`` is ``alpha`` for
    positives and ``1 - alpha`` for negatives.

    Args:
        pred (Tensor): (N, C) logits, or probabilities when ``activated``.
        target (Tensor): (N, C) binary targets.
        gamma (float): Focusing exponent.
        alpha (float): Weight of the positive class.
        activated (bool): ``pred`` already holds probabilities.

    Returns:
        Tensor: (N, C) loss.
    """
    is_positive = target > 0
    if activated:
        prob = pred
        bce = F.binary_cross_entropy(pred, target.type_as(pred), reduction='none')
    else:
        prob = pred.sigmoid()
        bce = F.binary_cross_entropy_with_logits(pred, target.type_as(pred), reduction='none')
    # torch.where instead of target-weighted sums: fewer (N, C) temporaries to
    # keep for backward, which dominates the cost of this loss.
    one_minus_pt = torch.where(is_positive, 1 - prob, prob)
    alpha_t = torch.where(is_positive, alpha, 1 - alpha)
    modulator = one_minus_pt * one_minus_pt if gamma == 2.0 else one_minus_pt.pow(gamma)
    return bce * alpha_t * modulator


def _match_weight(weight: Tensor, loss: Tensor) -> Tensor:
    """Shape a (N,), (N * C,) or (N, C) weight like the (N, C) loss."""
    if weight.shape == loss.shape:
        return weight
    if weight.dim() == 1 and weight.size(0) == loss.size(0):
        return weight.view(-1, 1)
    if weight.numel() == loss.numel():
        return weight.view(loss.size(0), -1)
    raise ValueError(f'FocalLoss: weight of shape {tuple(weight.shape)} fits neither (N,) nor '
                     f'(N, C) for a loss of shape {tuple(loss.shape)}')


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss.

    Args:
        use_sigmoid (bool): Must be True; the softmax variant is not
            implemented. Defaults to True.
        gamma (float): Focusing exponent. Defaults to 2.0.
        alpha (float): Weight of positives (negatives get 1 - alpha).
            Defaults to 0.25.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        activated (bool): Predictions are probabilities, not logits.
            Defaults to False.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 activated: bool = False) -> None:
        super().__init__()
        if not use_sigmoid:
            raise ValueError('FocalLoss: only the sigmoid focal loss is implemented; set '
                             'use_sigmoid=True (the softmax variant is not supported)')
        check_reduction('FocalLoss', reduction)
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Focal loss of a batch of predictions.

        Args:
            pred (Tensor): (N, C) logits (probabilities if ``activated``).
            target (Tensor): (N,) long labels in [0, C], C meaning background
                (all C sigmoids pushed to 0); or (N, C) binary targets.
            weight (Tensor, optional): (N,) per-sample or (N, C) weight.
            avg_factor (float, optional): Divisor of the mean, usually the
                number of positives.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; a scalar unless the
            reduction is ``'none'`` ((N, C) then). With N = 0 and a reducing
            reduction, a zero connected to ``pred``.
        """
        check_reduction('FocalLoss', reduction_override, allow_none=True)
        reduction = reduction_override if reduction_override else self.reduction
        if pred.dim() != 2:
            raise ValueError(f'FocalLoss: pred must be (N, C), got {tuple(pred.shape)}')
        if target.dim() == 1:
            target = labels_to_one_hot(target, num_classes=pred.size(1))
        if target.shape != pred.shape:
            raise ValueError(f'FocalLoss: target must be (N,) labels or (N, C) like pred '
                             f'{tuple(pred.shape)}, got {tuple(target.shape)}')
        if pred.numel() == 0 and reduction != 'none':
            return zero_loss_like(pred)
        loss = sigmoid_focal_loss(pred, target, self.gamma, self.alpha, self.activated)
        if weight is not None:
            weight = _match_weight(weight, loss)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
