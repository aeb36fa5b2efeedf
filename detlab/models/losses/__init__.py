"""Losses, registered in MODELS under MMDetection's names."""
from .focal_loss import FocalLoss, sigmoid_focal_loss
from .smooth_l1_loss import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from .utils import reduce_loss, weight_reduce_loss
from .accuracy import Accuracy, accuracy
from .dice_loss import DiceLoss, dice_loss
from .cross_entropy_loss import (CrossEntropyLoss, binary_cross_entropy,
                                 cross_entropy, mask_cross_entropy)
from .gfocal_loss import QualityFocalLoss
from .iou_loss import (CIoULoss, DIoULoss, GIoULoss, IoULoss, ciou_loss,
                       diou_loss, giou_loss, iou_loss)
from .kd_loss import KnowledgeDistillationKLDivLoss
from .mse_loss import MSELoss, mse_loss
from .utils import weighted_loss

__all__ = [
    'FocalLoss', 'L1Loss', 'SmoothL1Loss', 'sigmoid_focal_loss', 'l1_loss', 'smooth_l1_loss',
    'reduce_loss', 'weight_reduce_loss', 'accuracy', 'Accuracy', 'cross_entropy',
    'binary_cross_entropy', 'mask_cross_entropy', 'CrossEntropyLoss', 'mse_loss', 'MSELoss',
    'iou_loss', 'IoULoss', 'GIoULoss', 'DIoULoss', 'CIoULoss', 'QualityFocalLoss',
    'KnowledgeDistillationKLDivLoss', 'weighted_loss', 'giou_loss', 'diou_loss', 'ciou_loss',
    'DiceLoss', 'dice_loss'
]
