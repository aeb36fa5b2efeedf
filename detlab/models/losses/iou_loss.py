"""Box-overlap regression losses: IoU, GIoU, DIoU and CIoU.

Every loss here compares (n, 4) predicted boxes with their (n, 4) targets,
both ``x1, y1, x2, y2``, pair by pair, and gives an (n,) element-wise loss.
"""
import math
import warnings
from typing import Callable, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.bbox import bbox_overlaps
from detlab.structures.errors import AssertionValueError
from .utils import resolve_reduction, weighted_loss, weights_all_zero, zero_weight_loss

#: Modes of ``iou_loss``: 1 - IoU, 1 - IoU^2, -log(IoU).
IOU_LOSS_MODES = ('linear', 'square', 'log')


def _aligned_overlaps(pred: Tensor, target: Tensor, mode: str, eps: float) -> Tensor:
    """Pairwise IoU or GIoU, computed in fp32 for fp16 inputs and cast back.

    No boxes give an empty (0,) tensor still tied to ``pred``'s graph.
    """
    if pred.size(0) == 0:
        return pred.sum(-1) * 0
    if pred.dtype == torch.float16:
        return bbox_overlaps(pred.float(), target.float(), mode=mode, is_aligned=True,
                             eps=eps).half()
    return bbox_overlaps(pred, target, mode=mode, is_aligned=True, eps=eps)


@weighted_loss
def iou_loss(pred: Tensor,
             target: Tensor,
             linear: bool = False,
             mode: str = 'log',
             eps: float = 1e-6) -> Tensor:
    """IoU loss of aligned box pairs, IoU clamped to at least ``eps``.

    Args:
        pred (Tensor): (n, 4) predicted boxes.
        target (Tensor): (n, 4) target boxes.
        linear (bool): Deprecated alias of ``mode='linear'``.
        mode (str): ``'linear'`` (1 - IoU), ``'square'`` (1 - IoU^2) or
            ``'log'`` (-log IoU).
        eps (float): Lower bound of the IoU, so the log stays finite.

    Returns:
        Tensor: (n,) loss.
    """
    if mode not in IOU_LOSS_MODES:
        raise AssertionValueError(f'iou_loss: mode must be one of {IOU_LOSS_MODES}, got {mode!r}')
    if linear:
        mode = 'linear'
        warnings.warn('iou_loss: linear=True is deprecated, use mode="linear"')
    ious = _aligned_overlaps(pred, target, 'iou', 1e-6).clamp(min=eps)
    if mode == 'linear':
        return 1 - ious
    if mode == 'square':
        return 1 - ious**2
    return -ious.log()


@weighted_loss
def giou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """1 - GIoU of aligned box pairs (https://arxiv.org/abs/1902.09630).

    Args:
        pred (Tensor): (n, 4) predicted boxes.
        target (Tensor): (n, 4) target boxes.
        eps (float): Lower bound of the union and enclosing areas.

    Returns:
        Tensor: (n,) loss in [0, 2].
    """
    return 1 - _aligned_overlaps(pred, target, 'giou', eps)


def _iou_and_center_distance(pred: Tensor, target: Tensor,
                             eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    """IoU, squared centre distance and squared enclosing diagonal of box pairs.

    Returns:
        tuple: ``(ious, rho2, c2)``, each (n,); ``eps`` is added to the union
        and to ``c2``.
    """
    inter_wh = (torch.min(pred[:, 2:], target[:, 2:]) -
                torch.max(pred[:, :2], target[:, :2])).clamp(min=0)
    overlap = inter_wh[:, 0] * inter_wh[:, 1]
    area_pred = (pred[:, 2] - pred[:, 0]) * (pred[:, 3] - pred[:, 1])
    area_target = (target[:, 2] - target[:, 0]) * (target[:, 3] - target[:, 1])
    ious = overlap / (area_pred + area_target - overlap + eps)
    enclose_wh = (torch.max(pred[:, 2:], target[:, 2:]) -
                  torch.min(pred[:, :2], target[:, :2])).clamp(min=0)
    c2 = enclose_wh[:, 0]**2 + enclose_wh[:, 1]**2 + eps
    # Twice the centre offset, squared and divided by 4: the squared distance.
    double_center_offset = (target[:, :2] + target[:, 2:]) - (pred[:, :2] + pred[:, 2:])
    rho2 = double_center_offset[:, 0]**2 / 4 + double_center_offset[:, 1]**2 / 4
    return ious, rho2, c2


@weighted_loss
def diou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """1 - DIoU: IoU minus squared centre distance over squared enclosing diagonal.

    https://arxiv.org/abs/1911.08287

    Args:
        pred (Tensor): (n, 4) predicted boxes.
        target (Tensor): (n, 4) target boxes.
        eps (float): Added to the union and the squared diagonal.

    Returns:
        Tensor: (n,) loss.
    """
    ious, rho2, c2 = _iou_and_center_distance(pred, target, eps)
    return 1 - (ious - rho2 / c2)


@weighted_loss
def ciou_loss(pred: Tensor, target: Tensor, eps: float = 1e-7) -> Tensor:
    """1 - CIoU: DIoU with an aspect-ratio consistency term.

    ``v = 4 / pi^2 * (atan(w_t / h_t) - atan(w_p / h_p))^2`` and its trade-off
    ``alpha = v / (1 - IoU + v)`` where IoU > 0.5, else 0, held constant (no
    gradient), as in https://arxiv.org/abs/2005.03572 and MMDetection. The
    CIoU is clamped to [-1, 1].

    Args:
        pred (Tensor): (n, 4) predicted boxes.
        target (Tensor): (n, 4) target boxes.
        eps (float): Added to the union, the squared diagonal and the heights.

    Returns:
        Tensor: (n,) loss in [0, 2].
    """
    ious, rho2, c2 = _iou_and_center_distance(pred, target, eps)
    w_pred, h_pred = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1] + eps
    w_target, h_target = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1] + eps
    v = (4 / math.pi**2) * (torch.atan(w_target / h_target) - torch.atan(w_pred / h_pred))**2
    with torch.no_grad():
        alpha = (ious > 0.5).float() * v / (1 - ious + v)
    cious = ious - (rho2 / c2 + alpha * v)
    return 1 - cious.clamp(min=-1.0, max=1.0)


class _BoxOverlapLoss(nn.Module):
    """The common forward of the box-overlap losses.

    Args:
        eps (float): Passed to the loss function.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight (float): Multiplier of the loss.
    """

    #: The weighted element-wise loss function; set by each subclass.
    loss_func: Callable[..., Tensor]

    def __init__(self, eps: float = 1e-6, reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        resolve_reduction(type(self).__name__, reduction, None, None)
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def loss_kwargs(self) -> dict:
        return dict(eps=self.eps)

    def forward(self,
                pred: Tensor,
                target: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                **kwargs) -> Tensor:
        """Weighted, reduced loss of aligned box pairs.

        Args:
            pred (Tensor): (n, 4) predicted boxes, x1, y1, x2, y2.
            target (Tensor): (n, 4) target boxes.
            weight (Tensor, optional): (n,) weight, or (n, 4) (averaged over
                the 4 coordinates).
            avg_factor (float, optional): Divisor of the mean.
            reduction_override (str, optional): Overrides ``self.reduction``.

        Returns:
            Tensor: ``loss_weight`` times the loss; (n,) for ``'none'``.
            All-zero weights give a zero tied to ``pred``.
        """
        name = type(self).__name__
        reduction = resolve_reduction(name, self.reduction, reduction_override, avg_factor)
        if pred.shape != target.shape or (pred.dim() == 2 and pred.size(-1) != 4):
            raise AssertionValueError(f'{name}: pred and target must both be (n, 4) boxes, got '
                                      f'{tuple(pred.shape)} and {tuple(target.shape)}')
        if weights_all_zero(weight) and reduction != 'none':
            return zero_weight_loss(pred, weight)
        if weight is not None and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise AssertionValueError(f'{name}: a 2-d weight must have the shape of pred '
                                          f'{tuple(pred.shape)}, got {tuple(weight.shape)}')
            weight = weight.mean(-1)
        loss = type(self).loss_func(pred, target, weight, reduction=reduction,
                                    avg_factor=avg_factor, **self.loss_kwargs(), **kwargs)
        return self.loss_weight * loss


@MODELS.register_module()
class IoULoss(_BoxOverlapLoss):
    """IoU loss: ``1 - IoU``, ``1 - IoU^2`` or ``-log IoU`` (the default).

    Args:
        linear (bool): Deprecated alias of ``mode='linear'``.
            Defaults to False.
        eps (float): Lower bound of the IoU. Defaults to 1e-6.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        mode (str): ``'linear'``, ``'square'`` or ``'log'``.
            Defaults to ``'log'``.
    """

    loss_func = iou_loss

    def __init__(self,
                 linear: bool = False,
                 eps: float = 1e-6,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0,
                 mode: str = 'log') -> None:
        super().__init__(eps=eps, reduction=reduction, loss_weight=loss_weight)
        if mode not in IOU_LOSS_MODES:
            raise AssertionValueError(f'IoULoss: mode must be one of {IOU_LOSS_MODES}, got '
                                      f'{mode!r}')
        if linear:
            mode = 'linear'
            warnings.warn('IoULoss: linear=True is deprecated, use mode="linear"')
        self.mode = mode
        self.linear = linear

    def loss_kwargs(self) -> dict:
        return dict(mode=self.mode, eps=self.eps)


@MODELS.register_module()
class GIoULoss(_BoxOverlapLoss):
    """``1 - GIoU`` (https://arxiv.org/abs/1902.09630).

    Args:
        eps (float): Lower bound of the areas. Defaults to 1e-6.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    loss_func = giou_loss


@MODELS.register_module()
class DIoULoss(_BoxOverlapLoss):
    """``1 - DIoU`` (https://arxiv.org/abs/1911.08287).

    Args:
        eps (float): Added to union and diagonal. Defaults to 1e-6.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    loss_func = diou_loss


@MODELS.register_module()
class CIoULoss(_BoxOverlapLoss):
    """``1 - CIoU`` (https://arxiv.org/abs/2005.03572).

    Args:
        eps (float): Added to union, diagonal and heights. Defaults to 1e-6.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    loss_func = ciou_loss
