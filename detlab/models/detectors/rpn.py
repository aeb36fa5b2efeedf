"""RPN alone: a detector whose detections are class-agnostic region proposals."""
from typing import Optional

from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import SampleList
from .base import BaseDetector
from .single_stage import SingleStageDetector
from .two_stage import class_agnostic_samples, single_class


@MODELS.register_module()
class RPN(SingleStageDetector):
    """Region Proposal Network trained and run on its own (MMDetection's ``RPN``).

    The head is stored as ``bbox_head`` (MMDetection's state_dict key) and
    predicts proposals with label 0; ``train_cfg.rpn`` and ``test_cfg.rpn``
    configure it.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck config (may be None).
        rpn_head (dict): e.g. ``RPNHead``; ``num_classes`` is forced to 1.
        train_cfg (dict): With ``rpn`` (may be None for inference only).
        test_cfg (dict): With ``rpn``.
        data_preprocessor (dict, optional): e.g. ``DetDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict],
                 rpn_head: dict,
                 train_cfg: Optional[dict],
                 test_cfg: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        BaseDetector.__init__(self, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.bbox_head = MODELS.build(dict(
            rpn_head, num_classes=single_class(rpn_head),
            train_cfg=train_cfg.get('rpn') if train_cfg else None,
            test_cfg=test_cfg.get('rpn') if test_cfg else None))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """``loss_rpn_cls`` and ``loss_rpn_bbox``, with every gt as class 0."""
        return self.bbox_head.loss(self.extract_feat(batch_inputs),
                                   class_agnostic_samples(batch_data_samples))
