"""Cross-entropy losses: softmax, binary (sigmoid) and per-instance mask."""
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from .utils import resolve_reduction, weight_reduce_loss

#: F.cross_entropy's default ``ignore_index``, used when a loss is given None.
DEFAULT_IGNORE_INDEX = -100


def cross_entropy(pred: Tensor,
                  label: Tensor,
                  weight: Optional[Tensor] = None,
                  reduction: str = 'mean',
                  avg_factor: Optional[float] = None,
                  class_weight: Optional[Tensor] = None,
                  ignore_index: Optional[int] = DEFAULT_IGNORE_INDEX,
                  avg_non_ignore: bool = False) -> Tensor:
    """Softmax cross-entropy, weighted and reduced.

    Args:
        pred (Tensor): (N, C) logits.
        label (Tensor): (N,) long labels in [0, C), or ``ignore_index``.
        weight (Tensor, optional): (N,) per-sample weight.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor (float, optional): Divisor of the mean.
        class_weight (Tensor, optional): (C,) per-class weight.
        ignore_index (int, optional): Label that contributes no loss; None
            means -100.
        avg_non_ignore (bool): Without ``avg_factor``, average the mean over
            the labels that are not ignored only (as torch does).

    Returns:
        Tensor: The reduced loss, or the (N,) loss for ``'none'``.
    """
    ignore_index = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction='none',
                           ignore_index=ignore_index)
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = label.numel() - (label == ignore_index).sum().item()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def _expand_onehot_labels(labels: Tensor, label_weights: Optional[Tensor], label_channels: int,
                          ignore_index: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(N,) labels -> (N, C) binary targets, their weights and the valid mask.

    Labels outside [0, C) (the background label C) give an all-zero row;
    ignored labels give a row of zero weight.

    Returns:
        tuple: ``(bin_labels, bin_label_weights, valid_mask)``, each (N, C).
    """
    valid = (labels >= 0) & (labels != ignore_index)
    is_foreground = valid & (labels < label_channels)
    columns = torch.arange(label_channels, device=labels.device)
    bin_labels = (is_foreground[:, None] & (labels[:, None] == columns)).to(labels.dtype)
    valid_mask = valid.view(-1, 1).expand(labels.size(0), label_channels).float()
    if label_weights is None:
        return bin_labels, valid_mask, valid_mask
    bin_label_weights = label_weights.view(-1, 1).repeat(1, label_channels) * valid_mask
    return bin_labels, bin_label_weights, valid_mask


def binary_cross_entropy(pred: Tensor,
                         label: Tensor,
                         weight: Optional[Tensor] = None,
                         reduction: str = 'mean',
                         avg_factor: Optional[float] = None,
                         class_weight: Optional[Tensor] = None,
                         ignore_index: Optional[int] = DEFAULT_IGNORE_INDEX,
                         avg_non_ignore: bool = False) -> Tensor:
    """Binary cross-entropy with logits, weighted and reduced.

    Args:
        pred (Tensor): (N, C) logits, or logits of ``label``'s shape.
        label (Tensor): (N,) labels in [0, C] (C = background, all zeros) to
            expand to one-hot, or binary targets of ``pred``'s shape.
        weight (Tensor, optional): (N,) per-sample weight with (N,) labels,
            else broadcastable to ``pred``.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor (float, optional): Divisor of the mean.
        class_weight (Tensor, optional): (C,) weight of the positives of
            each class (``pos_weight`` of BCE-with-logits).
        ignore_index (int, optional): Label whose elements contribute no
            loss; None means -100. Negative labels are ignored as well.
        avg_non_ignore (bool): Without ``avg_factor``, average the mean over
            elements that are not ignored only.

    Returns:
        Tensor: The reduced loss, or the element-wise loss for ``'none'``.
    """
    ignore_index = DEFAULT_IGNORE_INDEX if ignore_index is None else ignore_index
    if pred.dim() != label.dim():
        label, weight, valid_mask = _expand_onehot_labels(label, weight, pred.size(-1),
                                                          ignore_index)
    else:
        valid_mask = ((label >= 0) & (label != ignore_index)).float()
        weight = valid_mask if weight is None else weight * valid_mask
    if avg_factor is None and avg_non_ignore and reduction == 'mean':
        avg_factor = valid_mask.sum().item()
    loss = F.binary_cross_entropy_with_logits(pred, label.float(), pos_weight=class_weight,
                                              reduction='none')
    return weight_reduce_loss(loss, weight.float(), reduction=reduction, avg_factor=avg_factor)


def mask_cross_entropy(pred: Tensor,
                       target: Tensor,
                       label: Tensor,
                       reduction: str = 'mean',
                       avg_factor: Optional[float] = None,
                       class_weight: Optional[Tensor] = None,
                       ignore_index: Optional[int] = None,
                       **kwargs) -> Tensor:
    """Binary cross-entropy of each instance's mask logits for its own class.

    Args:
        pred (Tensor): (N, C, H, W) mask logits.
        target (Tensor): (N, H, W) binary mask targets.
        label (Tensor): (N,) class of each instance; selects its mask.
        reduction (str): Only ``'mean'``.
        avg_factor (float, optional): Must be None.
        class_weight (Tensor, optional): Element weight of the BCE.
        ignore_index (int, optional): Must be None.

    Returns:
        Tensor: (1,) mean loss.
    """
    if ignore_index is not None:
        raise AssertionValueError('mask_cross_entropy: ignore_index is not supported, got '
                                  f'{ignore_index}')
    if reduction != 'mean' or avg_factor is not None:
        raise AssertionValueError("mask_cross_entropy: only reduction='mean' without avg_factor "
                                  f'is supported, got reduction={reduction!r}, '
                                  f'avg_factor={avg_factor}')
    rows = torch.arange(pred.size(0), dtype=torch.long, device=pred.device)
    pred_slice = pred[rows, label]
    return F.binary_cross_entropy_with_logits(pred_slice, target, weight=class_weight,
                                              reduction='mean')[None]


@MODELS.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy loss: softmax, sigmoid (``use_sigmoid``) or mask (``use_mask``).

    Args:
        use_sigmoid (bool): Binary cross-entropy with logits per class
            instead of a softmax. Defaults to False.
        use_mask (bool): Mask cross-entropy (per-instance masks). Defaults to
            False. At most one of ``use_sigmoid`` and ``use_mask``.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'``.
            Defaults to ``'mean'``.
        class_weight (list[float], optional): Weight of each class.
        ignore_index (int, optional): Label to ignore. Defaults to None
            (-100, torch's default).
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        avg_non_ignore (bool): Average the mean over non-ignored labels only.
            Defaults to False.
    """

    def __init__(self,
                 use_sigmoid: bool = False,
                 use_mask: bool = False,
                 reduction: str = 'mean',
                 class_weight: Optional[Sequence[float]] = None,
                 ignore_index: Optional[int] = None,
                 loss_weight: float = 1.0,
                 avg_non_ignore: bool = False) -> None:
        super().__init__()
        if use_sigmoid and use_mask:
            raise AssertionValueError('CrossEntropyLoss: use_sigmoid and use_mask cannot both be '
                                      'True')
        resolve_reduction('CrossEntropyLoss', reduction, None, None)
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        if ignore_index is not None and not avg_non_ignore and reduction == 'mean':
            warnings.warn('CrossEntropyLoss: with ignore_index set and avg_non_ignore=False the '
                          'mean is taken over all labels, ignored ones included; set '
                          'avg_non_ignore=True to average over non-ignored labels as torch does.')
        if use_sigmoid:
            self.cls_criterion = binary_cross_entropy
        elif use_mask:
            self.cls_criterion = mask_cross_entropy
        else:
            self.cls_criterion = cross_entropy

    def extra_repr(self) -> str:
        return f'avg_non_ignore={self.avg_non_ignore}'

    def forward(self,
                cls_score: Tensor,
                label: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None,
                ignore_index: Optional[int] = None,
                **kwargs) -> Tensor:
        """The loss of a batch of class scores.

        Args:
            cls_score (Tensor): (N, C) logits; (N, C, H, W) mask logits with
                ``use_mask``.
            label (Tensor): (N,) labels (binary targets of ``cls_score``'s
                shape also work with ``use_sigmoid``); with ``use_mask`` the
                (N, H, W) mask targets.
            weight (Tensor, optional): (N,) per-sample weight; with
                ``use_mask``, as in MMDetection, the (N,) class of each mask.
            avg_factor (float, optional): Divisor of the mean.
            reduction_override (str, optional): Overrides ``self.reduction``.
            ignore_index (int, optional): Overrides ``self.ignore_index``.

        Returns:
            Tensor: ``loss_weight`` times the loss.
        """
        reduction = resolve_reduction('CrossEntropyLoss', self.reduction, reduction_override,
                                      avg_factor)
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = (None if self.class_weight is None else cls_score.new_tensor(
            self.class_weight))
        return self.loss_weight * self.cls_criterion(
            cls_score, label, weight, class_weight=class_weight, reduction=reduction,
            avg_factor=avg_factor, ignore_index=ignore_index, avg_non_ignore=self.avg_non_ignore,
            **kwargs)
