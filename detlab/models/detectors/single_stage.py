"""SingleStageDetector: backbone -> neck -> dense head."""
from typing import Optional

from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import OptSampleList, SampleList
from .base import BaseDetector


@MODELS.register_module()
class SingleStageDetector(BaseDetector):
    """A detector whose dense head predicts boxes directly from features.

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config.
        bbox_head (dict): Dense head config; ``train_cfg`` and ``test_cfg`` are
            handed to it (the given configs are not modified).
        train_cfg (dict, optional): Assigner, sampler and friends.
        test_cfg (dict, optional): Post-processing settings.
        data_preprocessor (dict, optional): e.g. ``DetDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 bbox_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs a bbox_head config.')
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.bbox_head = MODELS.build(dict(bbox_head, train_cfg=train_cfg, test_cfg=test_cfg))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_neck(self) -> bool:
        return hasattr(self, 'neck') and self.neck is not None

    def extract_feat(self, batch_inputs: Tensor) -> tuple:
        feats = self.backbone(batch_inputs)
        return self.neck(feats) if self.with_neck else feats

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        return self.bbox_head.loss(self.extract_feat(batch_inputs), batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        results = self.bbox_head.predict(self.extract_feat(batch_inputs), batch_data_samples,
                                         rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None) -> tuple:
        return self.bbox_head.forward(self.extract_feat(batch_inputs))
