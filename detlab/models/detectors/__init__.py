"""Detectors: backbone, neck and heads put together, with MMDetection's names."""
from .atss import ATSS
from .base import BaseDetector
from .base_detr import DetectionTransformer
from .cascade_rcnn import CascadeRCNN
from .conditional_detr import ConditionalDETR
from .dab_detr import DABDETR
from .deformable_detr import DeformableDETR
from .detr import DETR
from .dino import DINO
from .faster_rcnn import FasterRCNN
from .fcos import FCOS
from .fovea import FOVEA
from .htc import HybridTaskCascade
from .mask_rcnn import MaskRCNN
from .retinanet import RetinaNet
from .rpn import RPN
from .rtmdet import RTMDet
from .single_stage import SingleStageDetector
from .two_stage import TwoStageDetector
from .yolo import YOLOV3
from .yolox import YOLOX

__all__ = ['BaseDetector', 'SingleStageDetector', 'RetinaNet', 'TwoStageDetector', 'FasterRCNN',
           'MaskRCNN', 'RPN', 'FCOS', 'ATSS', 'RTMDet', 'DetectionTransformer', 'DETR',
           'DeformableDETR', 'DINO', 'CascadeRCNN', 'YOLOV3', 'ConditionalDETR',
           'DABDETR', 'YOLOX', 'HybridTaskCascade',
           'FOVEA']
