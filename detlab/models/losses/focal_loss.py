"""Sigmoid focal loss (RetinaNet, https://arxiv.org/abs/1708.02002)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from .utils import (AVG_FACTOR_EPS, check_avg_factor, check_reduction, resolve_reduction,
                    weight_reduce_loss)


#: mmcv's sigmoid focal loss kernel clamps probabilities at the smallest normal float32 before
#: taking their log.
FLT_MIN = torch.finfo(torch.float32).tiny


def _check_labels(labels: Tensor, num_classes: int) -> None:
    """Raise unless every one of the (N,) labels lies in [0, C]; label C is background."""
    if labels.numel() > 0 and (labels.min() < 0 or labels.max() > num_classes):
        raise AssertionValueError(f'FocalLoss: labels must lie in [0, {num_classes}] '
                                  f'({num_classes} = background), got min {int(labels.min())}, '
                                  f'max {int(labels.max())}')


def labels_to_one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Turn (N,) labels in [0, C] into (N, C) binary targets; label C is background.

    Raises:
        ValueError: A label outside [0, C].
    """
    _check_labels(labels, num_classes)
    return F.one_hot(labels.long(), num_classes=num_classes + 1)[:, :num_classes]


def _power(base: Tensor, exponent: float) -> Tensor:
    return base * base if exponent == 2.0 else base.pow(exponent)


def _at_labels(values: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """``values[n, labels[n]]`` as (N, 1), the (N, 1) columns used and the (N, 1) mask of the
    rows whose label is a class; no host-device synchronisation. A label outside [0, C) is
    the background, as in mmcv's kernel."""
    num_classes = values.size(1)
    columns = labels.clamp(min=0, max=num_classes - 1).unsqueeze(1)
    is_class = (labels >= 0) & (labels < num_classes)
    return values.gather(1, columns), columns, is_class.unsqueeze(1)


def fused_focal_loss_on(pred: Tensor) -> bool:
    """Whether :func:`sigmoid_focal_loss` takes the fused loss for ``pred``: on CUDA, as
    MMDetection (``benchmarks/bench_memory.py --fused-focal-loss`` makes it say yes on the CPU
    to measure that path's memory there)."""
    return pred.is_cuda


def _fused_focal_loss(pred: Tensor, labels: Tensor, gamma: float, alpha: float) -> Tensor:
    """mmcv's element-wise sigmoid focal loss of (N, C) ``pred`` against (N,) ``labels``,
    in fp32 for half-precision logits (see :class:`SigmoidFocalLossFunction`)."""
    logits = pred if pred.dtype in (torch.float32, torch.float64) else pred.float()
    prob = logits.sigmoid()
    loss = (1 - prob).clamp_(min=FLT_MIN).log_()
    loss.mul_(_power(prob, gamma)).mul_(alpha - 1)
    p, columns, is_class = _at_labels(prob, labels)
    positive = _power(1 - p, gamma) * p.clamp(min=FLT_MIN).log() * -alpha
    return loss.scatter_(1, columns, torch.where(is_class, positive, loss.gather(1, columns)))


def _fused_focal_grad(pred: Tensor, labels: Tensor, gamma: float, alpha: float) -> Tensor:
    """The gradient of :func:`_fused_focal_loss` with respect to ``pred``, by mmcv's
    closed-form expressions, in the dtype the loss is computed in."""
    logits = pred if pred.dtype in (torch.float32, torch.float64) else pred.float()
    prob = logits.sigmoid()
    one_minus = 1 - prob
    grad = one_minus.clamp(min=FLT_MIN).log_().mul_(one_minus).mul_(gamma).sub_(prob)
    del one_minus
    grad.mul_(_power(prob, gamma)).mul_(alpha - 1)
    p, columns, is_class = _at_labels(prob, labels)
    q = 1 - p
    positive = _power(q, gamma) * (q - gamma * p * p.clamp(min=FLT_MIN).log()) * -alpha
    return grad.scatter_(1, columns, torch.where(is_class, positive, grad.gather(1, columns)))


#: Elements of a row chunk of :class:`SigmoidFocalLossSum`: the temporaries of one chunk are
#: a few of these in fp32 (16 MiB each), whatever the number of priors.
FOCAL_CHUNK_ELEMENTS = 1 << 22


def _row_chunks(num_rows: int, num_cols: int):
    step = max(1, FOCAL_CHUNK_ELEMENTS // max(num_cols, 1))
    return [slice(start, start + step) for start in range(0, num_rows, step)]


class SigmoidFocalLossFunction(torch.autograd.Function):
    """Element-wise sigmoid focal loss of (N, C) logits against (N,) labels in [0, C] (C is
    the background), by the formulas of mmcv's ``sigmoid_focal_loss`` kernel, which is what
    MMDetection runs on CUDA:

    - class ``c != label``: ``-(1 - alpha) * p**gamma * log(max(1 - p, FLT_MIN))``;
    - class ``c == label``: ``-alpha * (1 - p)**gamma * log(max(p, FLT_MIN))``;

    with ``p = sigmoid(logit)``, and their closed-form gradients; as in that kernel, a label
    outside [0, C) counts as the background, and nothing reads the labels back to the host to
    check them (which would make the host wait for the device). Backward needs only the
    logits and the labels, so that is all it keeps; the autograd graph of the element-wise
    formula keeps about ten (N, C) tensors from forward to backward (for RetinaNet at batch 8
    and 800x800, each is some 300 MB in fp32). Half-precision logits are computed in fp32.
    Like mmcv's kernel it takes ``log(1 - p)`` of the rounded ``p``, so for logits beyond
    about +-6 it is less precise than the CPU's softplus form (0.3% at a logit of 12).
    """

    @staticmethod
    def forward(ctx, pred: Tensor, labels: Tensor, gamma: float, alpha: float) -> Tensor:
        ctx.save_for_backward(pred, labels)
        ctx.gamma, ctx.alpha = gamma, alpha
        return _fused_focal_loss(pred, labels, gamma, alpha)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        pred, labels = ctx.saved_tensors
        grad = _fused_focal_grad(pred, labels, ctx.gamma, ctx.alpha).mul_(grad_output)
        return grad.to(pred.dtype), None, None, None


class SigmoidFocalLossSum(torch.autograd.Function):
    """``sum(weight * loss)`` of :class:`SigmoidFocalLossFunction`'s element-wise loss,
    computed in row chunks of :data:`FOCAL_CHUNK_ELEMENTS`: neither direction holds an (N, C)
    temporary besides the gradient it returns, so the loss's share of a training step's peak
    memory is the logits, the labels, the weight and that gradient. ``weight`` is None, or
    broadcasts against (N, C) as (N, 1) or (N, C). Summed chunk by chunk, the total differs
    from one sum over all elements only by rounding.
    """

    @staticmethod
    def forward(ctx, pred: Tensor, labels: Tensor, weight: Optional[Tensor], gamma: float,
                alpha: float) -> Tensor:
        total = pred.new_zeros((), dtype=torch.promote_types(pred.dtype, torch.float32))
        for rows in _row_chunks(*pred.shape):
            loss = _fused_focal_loss(pred[rows], labels[rows], gamma, alpha)
            if weight is not None:
                loss.mul_(weight[rows])
            total += loss.sum()
        ctx.save_for_backward(pred, labels, weight)
        ctx.gamma, ctx.alpha = gamma, alpha
        return total

    @staticmethod
    def backward(ctx, grad_total: Tensor):
        pred, labels, weight = ctx.saved_tensors
        grad = torch.empty_like(pred)
        for rows in _row_chunks(*pred.shape):
            chunk = _fused_focal_grad(pred[rows], labels[rows], ctx.gamma, ctx.alpha)
            if weight is not None:
                chunk.mul_(weight[rows])
            grad[rows] = chunk.mul_(grad_total)
        return grad, None, None, None, None


def _focal_elementwise(pred: Tensor, target: Tensor, gamma: float, alpha: float,
                       activated: bool) -> Tensor:
    """``-alpha_t * (1 - p_t) ** gamma * log(p_t)`` for each element.

    Integer or bool targets are binary, and ``torch.where`` selects ``p_t``
    and ``alpha_t`` with fewer temporaries kept for backward (the main cost
    of this loss). Float targets may be soft, and are mixed linearly as
    ``t * positive + (1 - t) * negative``, MMDetection's formula.
    """
    prob = pred if activated else pred.sigmoid()
    target_f = target.type_as(pred)
    if activated:
        bce = F.binary_cross_entropy(pred, target_f, reduction='none')
    else:
        bce = F.binary_cross_entropy_with_logits(pred, target_f, reduction='none')
    if target.is_floating_point():
        one_minus_pt = (1 - prob) * target_f + prob * (1 - target_f)
        alpha_t = alpha * target_f + (1 - alpha) * (1 - target_f)
    else:
        is_positive = target > 0
        one_minus_pt = torch.where(is_positive, 1 - prob, prob)
        alpha_t = torch.where(is_positive, alpha, 1 - alpha)
    modulator = one_minus_pt * one_minus_pt if gamma == 2.0 else one_minus_pt.pow(gamma)
    return bce * (alpha_t * modulator)


def _match_weight(weight: Tensor, loss: Tensor) -> Tensor:
    """Shape a per-sample (N,) or element-wise weight like the (N, C, ...) loss."""
    if weight.shape == loss.shape:
        return weight
    if weight.dim() == 1 and weight.size(0) == loss.size(0):
        return weight.view((-1, ) + (1, ) * (loss.dim() - 1))
    if weight.numel() == loss.numel():
        return weight.view_as(loss)
    raise AssertionValueError(f'FocalLoss: weight of shape {tuple(weight.shape)} fits neither '
                              f'(N,) nor the loss shape {tuple(loss.shape)}')


def _weighted_focal(pred: Tensor, target: Tensor, weight: Optional[Tensor], gamma: float,
                    alpha: float, reduction: str, avg_factor: Optional[float],
                    activated: bool) -> Tensor:
    if target.shape != pred.shape:
        raise AssertionValueError(f'FocalLoss: target {tuple(target.shape)} must have the shape '
                                  f'of pred {tuple(pred.shape)} (or be (N,) labels for (N, C) '
                                  'pred)')
    loss = _focal_elementwise(pred, target, gamma, alpha, activated)
    if weight is not None:
        weight = _match_weight(weight, loss)
    return weight_reduce_loss(loss, weight, reduction, avg_factor)


def py_sigmoid_focal_loss(pred: Tensor,
                          target: Tensor,
                          weight: Optional[Tensor] = None,
                          gamma: float = 2.0,
                          alpha: float = 0.25,
                          reduction: str = 'mean',
                          avg_factor: Optional[float] = None) -> Tensor:
    """Focal loss of logits against binary (or soft) targets of the same shape.

    Args:
        pred (Tensor): (N, C) or dense (N, C, H, W) logits.
        target (Tensor): Targets, same shape as ``pred``.
        weight (Tensor, optional): (N,) per-sample or element-wise weight.
        gamma (float): Focusing exponent.
        alpha (float): Weight of positives (negatives get 1 - alpha).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor (float, optional): Divisor of the mean.

    Returns:
        Tensor: The reduced loss, or the element-wise loss for ``'none'``.
    """
    return _weighted_focal(pred, target, weight, gamma, alpha, reduction, avg_factor, False)


def py_focal_loss_with_prob(pred: Tensor,
                            target: Tensor,
                            weight: Optional[Tensor] = None,
                            gamma: float = 2.0,
                            alpha: float = 0.25,
                            reduction: str = 'mean',
                            avg_factor: Optional[float] = None) -> Tensor:
    """Focal loss of probabilities (already through a sigmoid).

    Args:
        pred (Tensor): (N, C) probabilities, or any shape with ``target`` of
            the same shape.
        target (Tensor): (N,) labels in [0, C] (C = background) or targets
            of ``pred``'s shape.
        weight, gamma, alpha, reduction, avg_factor: As
            ``py_sigmoid_focal_loss``.

    Returns:
        Tensor: The reduced loss, or the element-wise loss for ``'none'``.
    """
    if pred.dim() != target.dim():
        target = labels_to_one_hot(target, pred.size(1))
    return _weighted_focal(pred, target, weight, gamma, alpha, reduction, avg_factor, True)


def sigmoid_focal_loss(pred: Tensor,
                       target: Tensor,
                       weight: Optional[Tensor] = None,
                       gamma: float = 2.0,
                       alpha: float = 0.25,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None) -> Tensor:
    """Focal loss of (N, C) logits against (N,) labels, C meaning background.

    As in MMDetection: on CUDA, the fused loss of mmcv's kernel
    (:class:`SigmoidFocalLossFunction`: it keeps only the logits and the
    labels for backward and, like that kernel, takes a label outside [0, C)
    for the background); elsewhere the element-wise formula of
    ``py_sigmoid_focal_loss`` on one-hot targets (a label outside [0, C] is an
    error there), whose numbers are MMDetection's CPU numbers bit for bit.
    The two agree to float tolerance.

    Args:
        pred (Tensor): (N, C) logits.
        target (Tensor): (N,) long labels in [0, C].
        weight, gamma, alpha, reduction, avg_factor: As
            ``py_sigmoid_focal_loss``.

    Returns:
        Tensor: The reduced loss, or the (N, C) loss for ``'none'``.
    """
    if pred.dim() != 2 or target.dim() != 1:
        raise AssertionValueError('sigmoid_focal_loss: pred must be (N, C) and target (N,) '
                                  f'labels, got {tuple(pred.shape)} and {tuple(target.shape)}')
    if fused_focal_loss_on(pred):
        return _fused_sigmoid_focal_loss(pred, target.long(), weight, float(gamma),
                                         float(alpha), reduction, avg_factor)
    one_hot = labels_to_one_hot(target, pred.size(1))
    return _weighted_focal(pred, one_hot, weight, gamma, alpha, reduction, avg_factor, False)


def _fused_sigmoid_focal_loss(pred: Tensor, labels: Tensor, weight: Optional[Tensor],
                              gamma: float, alpha: float, reduction: str,
                              avg_factor: Optional[float]) -> Tensor:
    """:func:`sigmoid_focal_loss` by the fused loss: the element-wise loss for ``'none'``,
    else the weighted sum of :class:`SigmoidFocalLossSum` divided as ``weight_reduce_loss``
    divides (by ``avg_factor + eps``, or for a plain mean by the number of elements)."""
    if weight is not None:
        weight = _match_weight(weight, pred)
    if reduction == 'none':
        loss = SigmoidFocalLossFunction.apply(pred, labels, gamma, alpha)
        return weight_reduce_loss(loss, weight, reduction, avg_factor)
    check_reduction('sigmoid_focal_loss', reduction)
    check_avg_factor('sigmoid_focal_loss', reduction, avg_factor)
    total = SigmoidFocalLossSum.apply(pred, labels, weight, gamma, alpha)
    if avg_factor is not None:
        return total / (avg_factor + AVG_FACTOR_EPS)
    if reduction == 'mean':
        return total / pred.numel() if pred.numel() > 0 else total
    return total


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Sigmoid focal loss.

    Args:
        use_sigmoid (bool): Must be True; the softmax variant is not
            implemented (as in MMDetection). Defaults to True.
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
            raise AssertionValueError('FocalLoss: only the sigmoid focal loss is implemented; set '
                                      'use_sigmoid=True (the softmax variant is not supported)')
        resolve_reduction('FocalLoss', reduction, None, None)
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.activated = activated

    def upcasts_logits(self, pred: Tensor, target: Tensor) -> bool:
        """Whether a call with ``pred`` and ``target`` computes half-precision logits in
        fp32 itself: the fused loss ((N, C) logits, (N,) labels and
        :func:`fused_focal_loss_on`), which upcasts them chunk by chunk and returns their
        gradient in their own dtype, with the values of fp32 logits. A head may then hand
        it bf16 or fp16 logits as they are; an fp32 copy would be kept for backward."""
        return (not self.activated and pred.dim() == 2 and target.dim() == 1
                and fused_focal_loss_on(pred))

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> Tensor:
        """Focal loss of a batch of predictions.

        Args:
            pred (Tensor): (N, C) logits (probabilities if ``activated``), or
                dense (N, C, H, W) logits with ``target`` of the same shape.
            target (Tensor): (N,) long labels in [0, C], C meaning background
                (all C sigmoids pushed to 0); or binary / soft targets of
                ``pred``'s shape.
            weight (Tensor, optional): (N,) per-sample or element-wise weight.
            avg_factor (float, optional): Divisor of the mean, usually the
                number of positives.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; a scalar unless the
            reduction is ``'none'`` (``pred``'s shape then). With N = 0 and a
            reducing reduction, a zero connected to ``pred``.
        """
        reduction = resolve_reduction('FocalLoss', self.reduction, reduction_override,
                                      avg_factor)
        if self.activated:
            loss_func = py_focal_loss_with_prob
        elif pred.dim() == target.dim():
            loss_func = py_sigmoid_focal_loss
        else:
            loss_func = sigmoid_focal_loss
        return self.loss_weight * loss_func(pred, target, weight, gamma=self.gamma,
                                            alpha=self.alpha, reduction=reduction,
                                            avg_factor=avg_factor)
