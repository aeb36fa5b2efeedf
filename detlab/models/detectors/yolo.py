"""YOLOV3: a single-stage detector with a YOLOV3Head."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class YOLOV3(SingleStageDetector):
    """YOLOv3 (Redmon and Farhadi, 2018), configured as in MMDetection
    (Darknet-53 or MobileNetV2, YOLOV3Neck, YOLOV3Head)."""
