"""Dense heads: per-location class scores and boxes on every feature level."""
from .anchor_free_head import AnchorFreeHead
from .anchor_head import AnchorHead
from .atss_head import ATSSHead
from .base_dense_head import BaseDenseHead
from .fcos_head import FCOSHead
from .retina_head import RetinaHead
from .rpn_head import RPNHead
from .rtmdet_head import RTMDetHead, RTMDetSepBNHead

__all__ = [
    'BaseDenseHead', 'AnchorHead', 'AnchorFreeHead', 'RetinaHead', 'RPNHead', 'FCOSHead',
    'ATSSHead', 'RTMDetHead', 'RTMDetSepBNHead'
]
