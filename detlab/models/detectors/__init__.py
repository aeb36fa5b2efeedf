from .base import BaseDetector
from .faster_rcnn import FasterRCNN
from .mask_rcnn import MaskRCNN
from .retinanet import RetinaNet
from .rpn import RPN
from .single_stage import SingleStageDetector
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'RetinaNet', 'TwoStageDetector', 'FasterRCNN',
           'MaskRCNN', 'RPN']

from .atss import ATSS  # noqa: E402
from .fcos import FCOS  # noqa: E402

__all__ += ['FCOS', 'ATSS']

from .rtmdet import RTMDet  # noqa: E402

__all__ += ['RTMDet']
