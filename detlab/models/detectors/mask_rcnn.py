"""Mask R-CNN: Faster R-CNN whose RoI head also predicts a mask per detection."""
from detlab.registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class MaskRCNN(TwoStageDetector):
    """Mask R-CNN (He et al., 2017), configured as in MMDetection: a
    :class:`TwoStageDetector` whose ``roi_head`` (a ``StandardRoIHead``) has
    ``mask_roi_extractor`` and ``mask_head``. Training needs ``gt_instances.masks``
    (``LoadAnnotations(with_mask=True)``); predictions carry ``masks`` (N, H, W).

    Args: as :class:`TwoStageDetector`; ``rpn_head``, ``roi_head``,
    ``train_cfg`` and ``test_cfg`` are required.
    """

    def __init__(self, backbone: dict, rpn_head: dict, roi_head: dict, train_cfg, test_cfg,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, rpn_head=rpn_head, roi_head=roi_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, **kwargs)
