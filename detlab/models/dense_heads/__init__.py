from .anchor_head import AnchorHead
from .retina_head import RetinaHead
from .rpn_head import RPNHead

__all__ = ['AnchorHead', 'RetinaHead', 'RPNHead']

from .anchor_free_head import AnchorFreeHead  # noqa: E402
from .atss_head import ATSSHead  # noqa: E402
from .fcos_head import FCOSHead  # noqa: E402

__all__ += ['AnchorFreeHead', 'FCOSHead', 'ATSSHead']

from .deformable_detr_head import DeformableDETRHead  # noqa: E402
from .detr_head import DETRHead  # noqa: E402
from .dino_head import DINOHead  # noqa: E402

__all__ += ['DETRHead', 'DeformableDETRHead', 'DINOHead']
