"""ATSS (Zhang et al., 2020): a single-stage detector with an ATSSHead."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class ATSS(SingleStageDetector):
    """ATSS, configured as in MMDetection."""
