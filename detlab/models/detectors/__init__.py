from .base import BaseDetector
from .retinanet import RetinaNet
from .single_stage import SingleStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'RetinaNet']
