"""StandardRoIHead: the second stage of Faster R-CNN (box branch)."""
from typing import List, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS, TASK_UTILS
from detlab.structures import SampleList, bbox2roi
from ..utils import empty_instances


@MODELS.register_module()
class StandardRoIHead(BaseModule):
    """Assign and sample the proposals, pool their features, classify and refine them.

    Training (per image): the proposals are assigned to the gts
    (``train_cfg.assigner``) and sampled (``train_cfg.sampler``, which may add
    the gts as proposals); the sampled RoIs of all images then go through the
    extractor and ``bbox_head`` at once. Inference: every proposal is
    classified and its box regressed, then ``test_cfg`` (``score_thr``,
    ``nms``, ``max_per_img``) selects the detections.

    Args:
        bbox_roi_extractor (dict): e.g. ``SingleRoIExtractor``.
        bbox_head (dict): e.g. ``Shared2FCBBoxHead``.
        mask_roi_extractor, mask_head, shared_head (dict, optional): Not
            supported by detlab (box detection only); giving one is an error.
        train_cfg (dict, optional): R-CNN ``assigner``, ``sampler``, ``pos_weight``.
        test_cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 bbox_roi_extractor: Optional[dict] = None,
                 bbox_head: Optional[dict] = None,
                 mask_roi_extractor: Optional[dict] = None,
                 mask_head: Optional[dict] = None,
                 shared_head: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        unsupported = {name: cfg for name, cfg in (('mask_roi_extractor', mask_roi_extractor),
                                                   ('mask_head', mask_head),
                                                   ('shared_head', shared_head)) if cfg}
        if unsupported:
            raise ValueError(f'roi_head.{", ".join(unsupported)}: detlab detects boxes only; '
                             'remove these keys (mask heads and shared heads are not supported).')
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs bbox_roi_extractor and bbox_head '
                             'configs.')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.bbox_roi_extractor = MODELS.build(bbox_roi_extractor)
        self.bbox_head = MODELS.build(bbox_head)
        self.bbox_assigner = None
        self.bbox_sampler = None
        if train_cfg:
            self.bbox_assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.bbox_sampler = TASK_UTILS.build(train_cfg['sampler'],
                                                 default_args=dict(context=self))

    @property
    def with_bbox(self) -> bool:
        return True

    @property
    def with_mask(self) -> bool:
        return False

    @property
    def with_shared_head(self) -> bool:
        return False

    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> dict:
        """Head outputs for (K, 5) RoIs: ``cls_score`` (K, C + 1), ``bbox_pred``
        (K, 4C) and the pooled ``bbox_feats`` (K, 256, 7, 7)."""
        bbox_feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[SampleList] = None) -> Tuple[Tensor, Tensor]:
        """Raw ``(cls_score, bbox_pred)`` of every proposal, images concatenated."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        results = self._bbox_forward(x, rois)
        return results['cls_score'], results['bbox_pred']

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> dict:
        """Losses of the box branch: ``loss_cls``, ``acc``, ``loss_bbox``.

        Args:
            x (tuple[Tensor]): Pyramid features, (B, C, H_l, W_l) per level.
            rpn_results_list (list[InstanceData]): ``bboxes`` (P_i, 4)
                proposals of each image (not modified).
            batch_data_samples (list[DetDataSample]): with ``gt_instances``
                and optionally ``ignored_instances``.
        """
        if len(rpn_results_list) != len(batch_data_samples):
            raise ValueError(f'{len(rpn_results_list)} proposal lists for '
                             f'{len(batch_data_samples)} images')
        sampling_results = []
        for proposals, data_sample in zip(rpn_results_list, batch_data_samples):
            candidates = InstanceData(priors=proposals.bboxes)
            gt_instances = data_sample.gt_instances
            ignored = data_sample.get('ignored_instances')
            if ignored is not None and len(ignored) == 0:
                ignored = None
            assign_result = self.bbox_assigner.assign(candidates, gt_instances, ignored)
            sampling_results.append(
                self.bbox_sampler.sample(assign_result, candidates, gt_instances))
        rois = bbox2roi([res.priors for res in sampling_results])
        results = self._bbox_forward(x, rois)
        outputs = self.bbox_head.loss_and_target(results['cls_score'], results['bbox_pred'],
                                                 rois, sampling_results, self.train_cfg)
        return outputs['loss_bbox']

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList, rescale: bool = False) -> List[InstanceData]:
        """Detections per image: ``bboxes`` (M, 4), ``scores`` (M,), ``labels`` (M,),
        in the original image's pixels with ``rescale``."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        return self.predict_bbox(x, batch_img_metas, rpn_results_list, self.test_cfg,
                                 rescale=rescale)

    def predict_bbox(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     rpn_results_list: List[InstanceData], rcnn_test_cfg: Optional[dict],
                     rescale: bool = False) -> List[InstanceData]:
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals).to(x[0].device)
        if rois.shape[0] == 0:
            return empty_instances(batch_img_metas, rois.device,
                                   num_classes=self.bbox_head.num_classes,
                                   score_per_cls=rcnn_test_cfg is None)
        results = self._bbox_forward(x, rois)
        per_image = tuple(len(p) for p in proposals)
        bbox_preds = results['bbox_pred']
        bbox_preds = bbox_preds.split(per_image) if bbox_preds is not None else \
            (None, ) * len(proposals)
        return self.bbox_head.predict_by_feat(rois.split(per_image),
                                              results['cls_score'].split(per_image),
                                              bbox_preds, batch_img_metas,
                                              rcnn_test_cfg=rcnn_test_cfg, rescale=rescale)
