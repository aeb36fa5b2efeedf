"""RTMDet (Lyu et al., "RTMDet: An Empirical Study of Designing Real-Time
Object Detectors", 2022): CSPNeXt -> CSPNeXtPAFPN -> RTMDet head."""
from typing import Optional

import torch
from mmengine.dist import get_world_size
from mmengine.logging import print_log

from detlab.registry import MODELS
from .single_stage import SingleStageDetector


@MODELS.register_module()
class RTMDet(SingleStageDetector):
    """A single-stage detector that, like MMDetection's, turns its BatchNorms
    into SyncBatchNorm when built in a distributed run.

    Args:
        backbone, neck, bbox_head (dict): Model part configs.
        train_cfg, test_cfg (dict, optional): Handed to the head.
        data_preprocessor (dict, optional): e.g. ``DetDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
        use_syncbn (bool): Convert BatchNorm to SyncBatchNorm when the world
            size is above 1.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 bbox_head: dict,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 use_syncbn: bool = True) -> None:
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if use_syncbn and get_world_size() > 1:
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(self)
            print_log('Using SyncBatchNorm()', 'current')
