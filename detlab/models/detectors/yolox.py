"""YOLOX (Ge et al., "YOLOX: Exceeding YOLO Series in 2021"): CSPDarknet ->
YOLOXPAFPN -> YOLOXHead. Multi-scale training comes from the data
preprocessor's ``BatchSyncRandomResize``; the last epochs' switch (no Mosaic or
MixUp, an L1 box loss) from ``YOLOXModeSwitchHook``."""
from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class YOLOX(SingleStageDetector):
    """YOLOX: a single-stage detector with MMDetection's config keys
    (``backbone``, ``neck``, ``bbox_head``, ``train_cfg``, ``test_cfg``,
    ``data_preprocessor``, ``init_cfg``)."""
