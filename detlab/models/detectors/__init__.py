from .base import BaseDetector
from .faster_rcnn import FasterRCNN
from .retinanet import RetinaNet
from .rpn import RPN
from .single_stage import SingleStageDetector
from .two_stage import TwoStageDetector

__all__ = ['BaseDetector', 'SingleStageDetector', 'RetinaNet', 'TwoStageDetector', 'FasterRCNN',
           'RPN']

from .atss import ATSS  # noqa: E402
from .fcos import FCOS  # noqa: E402

__all__ += ['FCOS', 'ATSS']

from .base_detr import DetectionTransformer  # noqa: E402
from .deformable_detr import DeformableDETR  # noqa: E402
from .detr import DETR  # noqa: E402
from .dino import DINO  # noqa: E402

__all__ += ['DetectionTransformer', 'DETR', 'DeformableDETR', 'DINO']
