"""Quality focal loss (Generalized Focal Loss, https://arxiv.org/abs/2006.04388)."""
from functools import partial
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..utils import gathers_positives
from .focal_loss import _at_labels
from .utils import resolve_reduction, weighted_loss


def _quality_focal(pred: Tensor, label: Tensor, score: Tensor, beta: float,
                   activated: bool) -> Tensor:
    """Per-row QFL: negatives pulled to 0, each positive's own class to its score.

    On the CPU the positives are gathered with ``nonzero``, MMDetection's numbers bit for bit.
    Elsewhere (see :func:`gathers_positives`) each row's label column is gathered (a label
    outside [0, C) reads column 0 or C - 1 and keeps its negative value), so nothing waits
    for the device; values and gradients agree with the CPU's to float rounding (the exp and
    log kernels round differently on tensors of other sizes).

    Args:
        pred (Tensor): (N, C) logits, or probabilities when ``activated``.
        label (Tensor): (N,) labels in [0, C]; C (or a negative) is background.
        score (Tensor): (N,) quality (IoU) target of each positive.
        beta (float): Exponent of the modulating factor ``|y - sigma|``.
        activated (bool): ``pred`` holds probabilities.

    Returns:
        Tensor: (N,) loss, summed over classes.
    """
    prob = pred if activated else pred.sigmoid()
    bce = F.binary_cross_entropy if activated else F.binary_cross_entropy_with_logits
    loss = bce(pred, torch.zeros_like(pred), reduction='none') * prob.pow(beta)
    if not gathers_positives(pred):
        pos_prob, columns, is_positive = _at_labels(prob, label.long())
        pos_score = score.type_as(pred).unsqueeze(1)
        modulator = (pos_score - pos_prob).abs().pow(beta)
        positive = bce(pred.gather(1, columns), pos_score, reduction='none') * modulator
        loss = loss.scatter(1, columns,
                            torch.where(is_positive, positive, loss.gather(1, columns)))
        return loss.sum(dim=1)
    num_classes = pred.size(1)
    pos = ((label >= 0) & (label < num_classes)).nonzero().squeeze(1)
    pos_label = label[pos].long()
    pos_pred = pred[pos, pos_label]
    pos_score = score[pos].type_as(pred)
    modulator = (pos_score - prob[pos, pos_label]).abs().pow(beta)
    loss[pos, pos_label] = bce(pos_pred, pos_score, reduction='none') * modulator
    return loss.sum(dim=1)


def _split_target(owner: str, target: Sequence[Tensor]) -> Sequence[Tensor]:
    if len(target) != 2:
        raise AssertionValueError(f'{owner}: target must be a (labels, scores) pair, got '
                                  f'{len(target)} items')
    return target


@weighted_loss
def quality_focal_loss(pred: Tensor, target: Sequence[Tensor], beta: float = 2.0) -> Tensor:
    """QFL of logits against ``(labels, scores)``.

    Args:
        pred (Tensor): (N, C) logits of the joint class-quality score.
        target (tuple[Tensor]): (N,) labels (C = background) and (N,)
            quality scores.
        beta (float): Modulating exponent. Defaults to 2.0.

    Returns:
        Tensor: (N,) loss.
    """
    label, score = _split_target('quality_focal_loss', target)
    return _quality_focal(pred, label, score, beta, activated=False)


@weighted_loss
def quality_focal_loss_with_prob(pred: Tensor, target: Sequence[Tensor],
                                 beta: float = 2.0) -> Tensor:
    """QFL of probabilities against ``(labels, scores)``; see ``quality_focal_loss``."""
    label, score = _split_target('quality_focal_loss_with_prob', target)
    return _quality_focal(pred, label, score, beta, activated=True)


@weighted_loss
def quality_focal_loss_tensor_target(pred: Tensor,
                                     target: Tensor,
                                     beta: float = 2.0,
                                     activated: bool = False) -> Tensor:
    """QFL against a dense soft target: every non-zero entry is a positive.

    Args:
        pred (Tensor): (N, C, ...) logits (probabilities if ``activated``).
        target (Tensor): Soft targets, same shape as ``pred``.
        beta (float): Modulating exponent. Defaults to 2.0.
        activated (bool): ``pred`` holds probabilities.

    Returns:
        Tensor: (N, ...) loss, summed over dim 1.
    """
    if pred.shape != target.shape:
        raise AssertionValueError(f'quality_focal_loss_tensor_target: pred {tuple(pred.shape)} and '
                                  f'target {tuple(target.shape)} must have the same shape')
    prob = pred if activated else pred.sigmoid()
    bce = F.binary_cross_entropy if activated else F.binary_cross_entropy_with_logits
    target = target.type_as(pred)
    loss = bce(pred, torch.zeros_like(pred), reduction='none') * prob.pow(beta)
    pos = target != 0
    modulator = (target[pos] - prob[pos]).abs().pow(beta)
    loss[pos] = bce(pred[pos], target[pos], reduction='none') * modulator
    return loss.sum(dim=1)


@MODELS.register_module()
class QualityFocalLoss(nn.Module):
    """Quality focal loss: BCE on a joint class-quality score, focal-modulated.

    Args:
        use_sigmoid (bool): Must be True (only the sigmoid form exists).
            Defaults to True.
        beta (float): Modulating exponent. Defaults to 2.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        activated (bool): Predictions are probabilities. Defaults to False.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 beta: float = 2.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 activated: bool = False) -> None:
        super().__init__()
        if not use_sigmoid:
            raise AssertionValueError('QualityFocalLoss: only the sigmoid form is implemented; set '
                                      'use_sigmoid=True')
        resolve_reduction('QualityFocalLoss', reduction, None, None)
        self.use_sigmoid = use_sigmoid
        self.beta = beta
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def forward(self,
                pred: Tensor,
                target: Union[Sequence[Tensor], Tensor],
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """QFL of a batch.

        Args:
            pred (Tensor): (N, C) logits (probabilities if ``activated``).
            target (tuple[Tensor] | Tensor): ``(labels, scores)``, each (N,);
                or a soft target of ``pred``'s shape.
            weight (Tensor, optional): (N,) per-sample weight.
            avg_factor (float, optional): Divisor of the mean.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; (N,) for ``'none'``.
        """
        reduction = resolve_reduction('QualityFocalLoss', self.reduction, reduction_override,
                                      avg_factor)
        if isinstance(target, Tensor):
            loss_func = partial(quality_focal_loss_tensor_target, activated=self.activated)
        elif self.activated:
            loss_func = quality_focal_loss_with_prob
        else:
            loss_func = quality_focal_loss
        return self.loss_weight * loss_func(pred, target, weight, beta=self.beta,
                                            reduction=reduction, avg_factor=avg_factor)
