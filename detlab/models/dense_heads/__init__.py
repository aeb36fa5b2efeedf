"""Dense heads: per-location class scores and boxes on every feature level, and the DETR
family's set-prediction heads."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead
from .atss_head import ATSSHead
from .base_dense_head import BaseDenseHead
from .conditional_detr_head import ConditionalDETRHead
from .dab_detr_head import DABDETRHead
from .deformable_detr_head import DeformableDETRHead
from .detr_head import DETRHead
from .dino_head import DINOHead
from .fcos_head import FCOSHead
from .fovea_head import FeatureAlign, FoveaHead
from .retina_head import RetinaHead
from .rpn_head import RPNHead
from .rtmdet_head import RTMDetHead, RTMDetSepBNHead
from .rtmdet_ins_head import MaskFeatModule, RTMDetInsHead, RTMDetInsSepBNHead
from .ssd_head import SSDHead
from .yolo_head import YOLOV3Head
from .yolox_head import YOLOXHead

__all__ = [
    'BaseDenseHead', 'AnchorHead', 'AnchorFreeHead', 'RetinaHead', 'RPNHead', 'FCOSHead',
    'ATSSHead', 'RTMDetHead', 'RTMDetSepBNHead', 'DETRHead', 'DeformableDETRHead', 'DINOHead',
    'RTMDetInsHead', 'RTMDetInsSepBNHead', 'MaskFeatModule',
    'SSDHead', 'YOLOV3Head',
    'ConditionalDETRHead', 'DABDETRHead',
    'YOLOXHead',
    'FoveaHead', 'FeatureAlign'
]
