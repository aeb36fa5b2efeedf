"""Losses, registered in MODELS under MMDetection's names."""
from .focal_loss import FocalLoss, sigmoid_focal_loss
from .smooth_l1_loss import L1Loss, SmoothL1Loss, l1_loss, smooth_l1_loss
from .utils import reduce_loss, weight_reduce_loss

__all__ = [
    'FocalLoss', 'L1Loss', 'SmoothL1Loss', 'sigmoid_focal_loss', 'l1_loss', 'smooth_l1_loss',
    'reduce_loss', 'weight_reduce_loss'
]
