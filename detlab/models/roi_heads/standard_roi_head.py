"""StandardRoIHead: the second stage of Faster R-CNN (box branch) and Mask R-CNN (box and
mask branches)."""
from typing import List, Optional, Sequence, Tuple

import torch

from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.models.task_modules.samplers import SamplingResult
from detlab.registry import MODELS, TASK_UTILS
from detlab.structures import SampleList, bbox2roi
from ..utils import empty_instances, gathers_positives


@MODELS.register_module()
class StandardRoIHead(BaseModule):
    """Assign and sample the proposals, pool their features, classify and refine them;
    with a mask head, also predict a mask for each detection.

    Training (per image): the proposals are assigned to the gts
    (``train_cfg.assigner``) and sampled (``train_cfg.sampler``, which may add
    the gts as proposals); the sampled RoIs of all images then go through the
    extractor and ``bbox_head`` at once. The mask head sees the positive RoIs
    only, with targets cut from the gt masks (``train_cfg.mask_size``).
    Inference: every proposal is classified and its box regressed, then
    ``test_cfg`` (``score_thr``, ``nms``, ``max_per_img``) selects the
    detections; the mask head predicts a mask inside each detected box and
    pastes it into the image (``test_cfg.mask_thr_binary``).

    Args:
        bbox_roi_extractor (dict): e.g. ``SingleRoIExtractor``.
        bbox_head (dict): e.g. ``Shared2FCBBoxHead``.
        mask_roi_extractor (dict, optional): Pools the mask head's RoI
            features (14x14 in Mask R-CNN). Without it the mask head reuses
            the box branch's extractor and, in training, its features of the
            positive RoIs (``share_roi_extractor``).
        mask_head (dict, optional): e.g. ``FCNMaskHead``.
        shared_head (dict, optional): Layers run on every pooled RoI feature
            before the box and mask heads, e.g. ``ResLayer`` (C4 models).
        train_cfg (dict, optional): R-CNN ``assigner``, ``sampler``,
            ``pos_weight``; ``mask_size`` with a mask head.
        test_cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``;
            ``mask_thr_binary`` with a mask head.
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
        if mask_roi_extractor and not mask_head:
            raise ValueError('roi_head.mask_roi_extractor is given without a mask_head; add '
                             'mask_head (e.g. FCNMaskHead) or remove the extractor.')
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs bbox_roi_extractor and bbox_head '
                             'configs.')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if shared_head:
            self.shared_head = MODELS.build(shared_head)
        self.init_bbox_head(bbox_roi_extractor, bbox_head)
        if mask_head:
            self.init_mask_head(mask_roi_extractor, mask_head)
        self.init_assigner_sampler()

    def init_bbox_head(self, bbox_roi_extractor: dict, bbox_head: dict) -> None:
        """Build ``bbox_roi_extractor`` and ``bbox_head``."""
        self.bbox_roi_extractor = MODELS.build(bbox_roi_extractor)
        self.bbox_head = MODELS.build(bbox_head)

    def init_assigner_sampler(self) -> None:
        """Build ``bbox_assigner`` and ``bbox_sampler`` from ``train_cfg`` (None
        without it)."""
        self.bbox_assigner = None
        self.bbox_sampler = None
        if self.train_cfg:
            self.bbox_assigner = TASK_UTILS.build(self.train_cfg['assigner'])
            self.bbox_sampler = TASK_UTILS.build(self.train_cfg['sampler'],
                                                 default_args=dict(context=self))

    def init_mask_head(self, mask_roi_extractor: Optional[dict], mask_head: dict) -> None:
        """Build ``mask_head`` and its extractor (the box branch's when none is given)."""
        self.share_roi_extractor = mask_roi_extractor is None
        self.mask_roi_extractor = (self.bbox_roi_extractor if self.share_roi_extractor else
                                   MODELS.build(mask_roi_extractor))
        self.mask_head = MODELS.build(mask_head)

    @property
    def with_bbox(self) -> bool:
        return True

    @property
    def with_mask(self) -> bool:
        return getattr(self, 'mask_head', None) is not None

    @property
    def with_shared_head(self) -> bool:
        return getattr(self, 'shared_head', None) is not None

    def _bbox_forward(self, x: Sequence[Tensor], rois: Tensor) -> dict:
        """Head outputs for (K, 5) RoIs: ``cls_score`` (K, C + 1), ``bbox_pred``
        (K, 4C) and the pooled ``bbox_feats`` (K, 256, 7, 7)."""
        bbox_feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(self, x: Sequence[Tensor], rois: Optional[Tensor] = None,
                      pos_inds: Optional[Tensor] = None,
                      bbox_feats: Optional[Tensor] = None) -> dict:
        """Mask logits ``mask_preds`` (K, C, 28, 28) and their RoI features
        ``mask_feats``: pooled for (K, 5) ``rois``, or the rows ``pos_inds``
        (bool) of the box branch's ``bbox_feats``."""
        if (rois is None) == (pos_inds is None or bbox_feats is None):
            raise ValueError('_mask_forward needs either rois or both pos_inds and bbox_feats')
        if rois is not None:
            mask_feats = self.mask_roi_extractor(x[:self.mask_roi_extractor.num_inputs], rois)
            if self.with_shared_head:
                mask_feats = self.shared_head(mask_feats)
        else:
            mask_feats = bbox_feats[pos_inds]
        return dict(mask_preds=self.mask_head(mask_feats), mask_feats=mask_feats)

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[SampleList] = None) -> Tuple[Tensor, ...]:
        """Raw ``(cls_score, bbox_pred)`` of every proposal, images concatenated;
        with a mask head also ``mask_preds`` of the first 100 proposals (as
        MMDetection, to trace the mask branch)."""
        rois = bbox2roi([res.bboxes for res in rpn_results_list])
        results = self._bbox_forward(x, rois)
        outputs = (results['cls_score'], results['bbox_pred'])
        if self.with_mask:
            outputs += (self._mask_forward(x, rois[:100])['mask_preds'], )
        return outputs

    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> dict:
        """Losses of the box branch: ``loss_cls``, ``acc``, ``loss_bbox``; and
        ``loss_mask`` with a mask head.

        Args:
            x (tuple[Tensor]): Pyramid features, (B, C, H_l, W_l) per level.
            rpn_results_list (list[InstanceData]): ``bboxes`` (P_i, 4)
                proposals of each image (not modified).
            batch_data_samples (list[DetDataSample]): with ``gt_instances``
                (``masks`` too with a mask head) and optionally
                ``ignored_instances``.
        """
        # Off the CPU a sampler that can (RandomSampler) fills a fixed number of
        # slots per image, so that nothing waits for the device to learn how
        # many RoIs were drawn; on the CPU it draws MMDetection's samples.
        draw_slots = (hasattr(self.bbox_sampler, 'draw_slots')
                      and not gathers_positives(x[0]))
        sampling_results = self.assign_and_sample(rpn_results_list, batch_data_samples,
                                                  self.bbox_assigner, self.bbox_sampler,
                                                  draw_slots=draw_slots)
        rois = bbox2roi([res.priors for res in sampling_results])
        results = self._bbox_forward(x, rois)
        outputs = self.bbox_head.loss_and_target(results['cls_score'], results['bbox_pred'],
                                                 rois, sampling_results, self.train_cfg)
        losses = dict(outputs['loss_bbox'])
        if self.with_mask:
            losses.update(self.mask_loss(x, sampling_results, results['bbox_feats'],
                                         [sample.gt_instances for sample in batch_data_samples]))
        return losses

    @staticmethod
    def assign_and_sample(rpn_results_list: List[InstanceData],
                          batch_data_samples: SampleList, assigner, sampler,
                          draw_slots: bool = False) -> List[SamplingResult]:
        """Assign each image's proposals (``bboxes``, not modified) to its gts
        (and ``ignored_instances``) and sample them: one SamplingResult per
        image (a SlotSamplingResult from ``sampler.draw_slots`` with
        ``draw_slots``)."""
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
            assign_result = assigner.assign(candidates, gt_instances, ignored)
            sample = sampler.draw_slots if draw_slots else sampler.sample
            sampling_results.append(sample(assign_result, candidates, gt_instances))
        return sampling_results

    def mask_loss(self, x: Sequence[Tensor], sampling_results: list, bbox_feats: Tensor,
                  batch_gt_instances: List[InstanceData]) -> dict:
        """``loss_mask`` of the positive RoIs: their features pooled again by
        ``mask_roi_extractor``, or taken from ``bbox_feats`` (the sampled
        RoIs' box features, each image's positives first) when the extractor
        is shared. The positives are gathered (their count is read back to
        the host) and their mask targets are cut on the host."""
        if not self.share_roi_extractor:
            pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
            results = self._mask_forward(x, pos_rois)
        else:
            pos_inds = torch.cat([res.pos_roi_mask for res in sampling_results]).to(
                bbox_feats.device)
            results = self._mask_forward(x, pos_inds=pos_inds, bbox_feats=bbox_feats)
        outputs = self.mask_head.loss_and_target(results['mask_preds'], sampling_results,
                                                 batch_gt_instances, self.train_cfg)
        return outputs['loss_mask']

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList, rescale: bool = False) -> List[InstanceData]:
        """Detections per image: ``bboxes`` (M, 4), ``scores`` (M,), ``labels`` (M,)
        and, with a mask head, ``masks`` (M, H, W); in the original image's
        pixels with ``rescale``."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        # The mask head pools from the boxes in the network input's pixels and
        # rescales boxes and masks itself.
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, self.test_cfg,
                                         rescale=rescale and not self.with_mask)
        if self.with_mask:
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale)
        return results_list

    def predict_mask(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     results_list: List[InstanceData],
                     rescale: bool = False) -> List[InstanceData]:
        """Add ``masks`` (M, H, W) to each image's detections (new InstanceData;
        boxes rescaled to the original image with ``rescale``)."""
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        if mask_rois.shape[0] == 0:
            mask_preds = [mask_rois.new_zeros(0, 1, 1, 1) for _ in results_list]
        else:
            mask_preds = self._mask_forward(x, mask_rois)['mask_preds']
            mask_preds = mask_preds.split([len(res) for res in results_list])
        return self.mask_head.predict_by_feat(mask_preds, results_list, batch_img_metas,
                                              self.test_cfg, rescale=rescale)

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
