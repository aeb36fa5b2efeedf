"""Cascade R-CNN: a two-stage detector whose RoI head is a cascade of box heads."""
from detlab.registry import MODELS
from .two_stage import TwoStageDetector


@MODELS.register_module()
class CascadeRCNN(TwoStageDetector):
    """Cascade R-CNN (Cai and Vasconcelos, 2018), configured as in MMDetection:
    a :class:`TwoStageDetector` whose ``roi_head`` is a ``CascadeRoIHead`` and
    whose ``train_cfg.rcnn`` is a list with one assigner/sampler config per
    stage. With ``mask_head`` in the RoI head it is Cascade Mask R-CNN.

    Args: as :class:`TwoStageDetector`.
    """
