"""FCOS (Tian et al., 2019): a single-stage detector with an FCOSHead."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class FCOS(SingleStageDetector):
    """FCOS, configured as in MMDetection."""
