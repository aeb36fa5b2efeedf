"""Faster R-CNN: a two-stage detector with an RPN and a StandardRoIHead."""
from typing import Optional

from detlab.registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class FasterRCNN(TwoStageDetector):
    """Faster R-CNN (Ren et al., 2015), configured as in MMDetection.

    Args: as :class:`TwoStageDetector`; ``rpn_head``, ``roi_head``,
    ``train_cfg`` and ``test_cfg`` are required.
    """

    def __init__(self,
                 backbone: dict,
                 rpn_head: dict,
                 roi_head: dict,
                 train_cfg: Optional[dict],
                 test_cfg: dict,
                 neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head,
                         train_cfg=train_cfg, test_cfg=test_cfg,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
