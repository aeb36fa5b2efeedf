"""TwoStageDetector: backbone -> neck -> RPN proposals -> RoI head."""
import warnings
from typing import List, Optional

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import DetDataSample, OptSampleList, SampleList
from .base import BaseDetector


@MODELS.register_module()
class TwoStageDetector(BaseDetector):
    """A detector that proposes class-agnostic regions, then classifies and refines them.

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config.
        rpn_head (dict, optional): Proposal head config; its ``num_classes``
            is forced to 1 (with a warning when set otherwise, as MMDetection).
            Without it, each data sample must carry ``proposals``.
        roi_head (dict, optional): Second-stage config.
        train_cfg (dict, optional): ``rpn`` (RPN assigner/sampler),
            ``rpn_proposal`` (proposal settings while training) and ``rcnn``.
        test_cfg (dict, optional): ``rpn`` (proposal settings) and ``rcnn``.
        data_preprocessor (dict, optional): e.g. ``DetDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.

    The configs given are not modified.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 rpn_head: Optional[dict] = None,
                 roi_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        if rpn_head is not None:
            self.rpn_head = MODELS.build(dict(
                rpn_head, num_classes=single_class(rpn_head),
                train_cfg=train_cfg.get('rpn') if train_cfg else None,
                test_cfg=test_cfg.get('rpn') if test_cfg else None))
        if roi_head is not None:
            self.roi_head = MODELS.build(dict(
                roi_head, train_cfg=train_cfg.get('rcnn') if train_cfg else None,
                test_cfg=test_cfg.get('rcnn') if test_cfg else None))
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    @property
    def with_neck(self) -> bool:
        return getattr(self, 'neck', None) is not None

    @property
    def with_rpn(self) -> bool:
        return getattr(self, 'rpn_head', None) is not None

    @property
    def with_roi_head(self) -> bool:
        return getattr(self, 'roi_head', None) is not None

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        """Load an RPN checkpoint (``bbox_head.*``) into ``rpn_head``, as MMDetection."""
        bbox_prefix, rpn_prefix = prefix + 'bbox_head', prefix + 'rpn_head'
        bbox_keys = [k for k in state_dict if k.startswith(bbox_prefix)]
        if bbox_keys and not any(k.startswith(rpn_prefix) for k in state_dict):
            for key in bbox_keys:
                state_dict[rpn_prefix + key[len(bbox_prefix):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extract_feat(self, batch_inputs: Tensor) -> tuple:
        feats = self.backbone(batch_inputs)
        return self.neck(feats) if self.with_neck else feats

    def _given_proposals(self, batch_data_samples: SampleList) -> List[InstanceData]:
        if any(sample.get('proposals') is None for sample in batch_data_samples):
            raise ValueError(f'{type(self).__name__} has no rpn_head, so every data sample needs '
                             'precomputed proposals (DetDataSample.proposals).')
        return [sample.proposals for sample in batch_data_samples]

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """RPN losses (``loss_rpn_cls``, ``loss_rpn_bbox``) and R-CNN losses
        (``loss_cls``, ``acc``, ``loss_bbox``)."""
        x = self.extract_feat(batch_inputs)
        losses = dict()
        if self.with_rpn:
            proposal_cfg = (self.train_cfg or {}).get('rpn_proposal',
                                                      (self.test_cfg or {}).get('rpn'))
            rpn_losses, rpn_results_list = self.rpn_head.loss_and_predict(
                x, class_agnostic_samples(batch_data_samples), proposal_cfg=proposal_cfg)
            for key in list(rpn_losses):
                if 'loss' in key and 'rpn' not in key:
                    rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
            losses.update(rpn_losses)
        else:
            rpn_results_list = self._given_proposals(batch_data_samples)
        losses.update(self.roi_head.loss(x, rpn_results_list, batch_data_samples))
        return losses

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Detections in ``pred_instances`` of each sample (original image's pixels with
        ``rescale``); precomputed ``proposals`` on the samples replace the RPN's."""
        x = self.extract_feat(batch_inputs)
        if batch_data_samples[0].get('proposals') is None:
            rpn_results_list = self.rpn_head.predict(x, batch_data_samples, rescale=False)
        else:
            rpn_results_list = self._given_proposals(batch_data_samples)
        results_list = self.roi_head.predict(x, rpn_results_list, batch_data_samples,
                                             rescale=rescale)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: OptSampleList = None) -> tuple:
        """``((cls_score, bbox_pred),)``: the RoI head's raw outputs for the proposals."""
        x = self.extract_feat(batch_inputs)
        if self.with_rpn:
            rpn_results_list = self.rpn_head.predict(x, batch_data_samples, rescale=False)
        else:
            rpn_results_list = self._given_proposals(batch_data_samples)
        return (self.roi_head.forward(x, rpn_results_list, batch_data_samples), )


def single_class(rpn_head: dict) -> int:
    """1, warning when the config asks an RPN head for more classes."""
    num_classes = rpn_head.get('num_classes', 1)
    if num_classes != 1:
        warnings.warn(f'rpn_head.num_classes should be 1 (objectness), got {num_classes}; '
                      'using 1. Set rpn_head.num_classes=1 in the config.')
    return 1


def class_agnostic_samples(batch_data_samples: SampleList) -> SampleList:
    """Shallow copies of the samples whose gt labels are all 0 (the RPN's one class);
    the given samples are left unchanged."""
    copies = []
    for sample in batch_data_samples:
        copy = DetDataSample(metainfo=sample.metainfo)
        gt = sample.gt_instances
        copy.gt_instances = InstanceData(bboxes=gt.bboxes, labels=torch.zeros_like(gt.labels))
        if sample.get('ignored_instances') is not None:
            copy.ignored_instances = sample.ignored_instances
        copies.append(copy)
    return copies
