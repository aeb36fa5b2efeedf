"""FoveaBox (Kong et al., 2019): a single-stage detector with a FoveaHead."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class FOVEA(SingleStageDetector):
    """FoveaBox, configured as in MMDetection."""
