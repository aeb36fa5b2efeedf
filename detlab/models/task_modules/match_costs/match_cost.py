"""Match costs: (num_preds, num_gts) cost matrices for one-to-one matching.

Every cost is called with ``pred_instances`` (``scores`` logits (N, C) and/or
``bboxes`` (N, 4) ``x1, y1, x2, y2`` in pixels, or ``masks``), ``gt_instances``
(``labels`` (G,), ``bboxes`` (G, 4) or ``masks``) and the image's ``img_meta``,
and returns ``weight`` times an (N, G) matrix where lower means a better match.
"""
from abc import abstractmethod
from typing import Optional, Union

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import bbox_overlaps, bbox_xyxy_to_cxcywh

BOX_FORMATS = ('xyxy', 'xywh')


class BaseMatchCost:
    """A weighted cost; subclasses implement ``__call__``."""

    def __init__(self, weight: Union[float, int] = 1.0) -> None:
        self.weight = weight

    @abstractmethod
    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        """(num_preds, num_gts) weighted cost."""


@TASK_UTILS.register_module()
class BBoxL1Cost(BaseMatchCost):
    """L1 distance of boxes normalised by the image size.

    Args:
        box_format (str): ``'xyxy'`` compares corners, ``'xywh'`` compares
            ``cx, cy, w, h``.
        weight (float): Multiplier.
    """

    def __init__(self, box_format: str = 'xyxy', weight: Union[float, int] = 1.0) -> None:
        super().__init__(weight=weight)
        if box_format not in BOX_FORMATS:
            raise ValueError(f'BBoxL1Cost: box_format must be one of {BOX_FORMATS}, got '
                             f'{box_format!r}')
        self.box_format = box_format

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        pred_bboxes, gt_bboxes = pred_instances.bboxes, gt_instances.bboxes
        if self.box_format == 'xywh':
            gt_bboxes = bbox_xyxy_to_cxcywh(gt_bboxes)
            pred_bboxes = bbox_xyxy_to_cxcywh(pred_bboxes)
        img_h, img_w = img_meta['img_shape']
        factor = gt_bboxes.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
        return torch.cdist(pred_bboxes / factor, gt_bboxes / factor, p=1) * self.weight


@TASK_UTILS.register_module()
class IoUCost(BaseMatchCost):
    """Negative IoU (or GIoU, ...) of every prediction with every gt.

    Args:
        iou_mode (str): A mode of ``bbox_overlaps``: ``'iou'``, ``'iof'``, ``'giou'``.
        weight (float): Multiplier.
    """

    def __init__(self, iou_mode: str = 'giou', weight: Union[float, int] = 1.0) -> None:
        super().__init__(weight=weight)
        self.iou_mode = iou_mode

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        pred_bboxes = pred_instances.bboxes
        overlaps = bbox_overlaps(pred_bboxes.float(), gt_instances.bboxes.float(),
                                 mode=self.iou_mode, is_aligned=False)
        return -overlaps.to(pred_bboxes.dtype) * self.weight


@TASK_UTILS.register_module()
class ClassificationCost(BaseMatchCost):
    """Negative softmax probability of the gt's class."""

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        pred_scores = pred_instances.scores.softmax(-1)
        return -pred_scores[:, gt_instances.labels] * self.weight


def _focal_terms(cls_pred: Tensor, alpha: float, gamma: float, eps: float):
    """Per-element focal loss of a positive and of a negative target."""
    cls_pred = cls_pred.sigmoid()
    neg_cost = -(1 - cls_pred + eps).log() * (1 - alpha) * cls_pred.pow(gamma)
    pos_cost = -(cls_pred + eps).log() * alpha * (1 - cls_pred).pow(gamma)
    return pos_cost, neg_cost


@TASK_UTILS.register_module()
class FocalLossCost(BaseMatchCost):
    """Focal loss of the gt's class against the sigmoid scores.

    Args:
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.
        eps (float): Keeps the logs finite. Defaults to 1e-12.
        binary_input (bool): Compare masks (``pred_instances.masks`` logits
            (N, H, W) against binary ``gt_instances.masks``) instead of classes.
        weight (float): Multiplier.
    """

    def __init__(self, alpha: Union[float, int] = 0.25, gamma: Union[float, int] = 2,
                 eps: float = 1e-12, binary_input: bool = False,
                 weight: Union[float, int] = 1.0) -> None:
        super().__init__(weight=weight)
        self.alpha = alpha
        self.gamma = gamma
        self.eps = eps
        self.binary_input = binary_input

    def _focal_loss_cost(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        pos_cost, neg_cost = _focal_terms(cls_pred, self.alpha, self.gamma, self.eps)
        return (pos_cost[:, gt_labels] - neg_cost[:, gt_labels]) * self.weight

    def _mask_focal_loss_cost(self, cls_pred: Tensor, gt_labels: Tensor) -> Tensor:
        cls_pred = cls_pred.flatten(1)
        gt_labels = gt_labels.flatten(1).float()
        pos_cost, neg_cost = _focal_terms(cls_pred, self.alpha, self.gamma, self.eps)
        cls_cost = (torch.einsum('nc,mc->nm', pos_cost, gt_labels) +
                    torch.einsum('nc,mc->nm', neg_cost, 1 - gt_labels))
        return cls_cost / cls_pred.shape[1] * self.weight

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        if self.binary_input:
            return self._mask_focal_loss_cost(pred_instances.masks, gt_instances.masks)
        return self._focal_loss_cost(pred_instances.scores, gt_instances.labels)


@TASK_UTILS.register_module()
class CrossEntropyLossCost(BaseMatchCost):
    """Mean binary cross-entropy of mask logits (N, H, W) against gt masks (G, H, W).

    Args:
        use_sigmoid (bool): Must be True (the only formulation).
        weight (float): Multiplier.
    """

    def __init__(self, use_sigmoid: bool = True, weight: Union[float, int] = 1.0) -> None:
        super().__init__(weight=weight)
        if not use_sigmoid:
            raise NotImplementedError('CrossEntropyLossCost supports use_sigmoid=True only')
        self.use_sigmoid = use_sigmoid

    def __call__(self, pred_instances: InstanceData, gt_instances: InstanceData,
                 img_meta: Optional[dict] = None, **kwargs) -> Tensor:
        cls_pred = pred_instances.masks.flatten(1).float()
        gt_labels = gt_instances.masks.flatten(1).float()
        pos = F.binary_cross_entropy_with_logits(cls_pred, torch.ones_like(cls_pred),
                                                 reduction='none')
        neg = F.binary_cross_entropy_with_logits(cls_pred, torch.zeros_like(cls_pred),
                                                 reduction='none')
        cls_cost = (torch.einsum('nc,mc->nm', pos, gt_labels) +
                    torch.einsum('nc,mc->nm', neg, 1 - gt_labels))
        return cls_cost / cls_pred.shape[1] * self.weight
