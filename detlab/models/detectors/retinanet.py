"""RetinaNet: a single-stage detector with a RetinaHead."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class RetinaNet(SingleStageDetector):
    """RetinaNet (Lin et al., 2017), configured as in MMDetection."""
