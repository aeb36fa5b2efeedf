"""HybridTaskCascadeRoIHead: the RoI head of Hybrid Task Cascade (HTC)."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import SampleList, bbox2roi
from .cascade_roi_head import CascadeRoIHead

SEMANTIC_FUSION_BRANCHES = ('bbox', 'mask')


@MODELS.register_module()
class HybridTaskCascadeRoIHead(CascadeRoIHead):
    """A cascade whose box and mask branches interleave and whose mask heads
    pass features from stage to stage (Chen et al., 2019), optionally with a
    semantic segmentation branch.

    Differences from :class:`CascadeRoIHead`:

    - ``interleaved``: in training, each stage's mask head learns on the
      RoIs this stage's box head has just regressed, assigned and sampled
      again with the stage's assigner and sampler (the next stage's
      proposals are those regressed RoIs too, without the gts the sampler
      added).
    - ``mask_info_flow``: the mask features of stage ``t`` are computed by
      running the mask heads ``0..t-1`` on the same RoI features, each head
      adding ``conv_res`` of the previous one's features (``HTCMaskHead``).
    - ``semantic_head`` (``FusedSemanticHead``): segments the whole image
      (``loss_semantic_seg`` against the samples' ``gt_sem_seg``); its
      semantic features, pooled by ``semantic_roi_extractor`` (and
      average-pooled to the RoI features' size), are added to the box and/or
      mask RoI features (``semantic_fusion``).
    - Inference pastes the masks of the last stage's head only (after the
      information flow through all the heads), as MMDetection 3.3 does;
      Cascade Mask R-CNN averages every stage's.

    Loss keys as MMDetection's: ``loss_semantic_seg`` and ``s{t}.loss_cls``,
    ``s{t}.acc``, ``s{t}.loss_bbox``, ``s{t}.loss_mask`` (weighted by
    ``stage_loss_weights[t]``). State_dict keys add ``semantic_head``.

    Args:
        num_stages (int): Number of stages.
        stage_loss_weights (list[float]): Weight of each stage's losses.
        semantic_roi_extractor (dict, optional): Pools the semantic features
            (one level, stride 8); needed with ``semantic_head``.
        semantic_head (dict, optional): e.g. ``FusedSemanticHead``.
        semantic_fusion (tuple[str]): Branches that get the semantic
            features: 'bbox' and/or 'mask'.
        interleaved (bool): Train the mask heads on the refined boxes.
        mask_info_flow (bool): Feed each mask head the previous ones'
            features; every mask head after the first then needs
            ``with_conv_res=True``.
        **kwargs: As :class:`CascadeRoIHead` (``bbox_roi_extractor``,
            ``bbox_head``, ``mask_roi_extractor``, ``mask_head``,
            ``train_cfg``, ``test_cfg``, ``init_cfg``).
    """

    def __init__(self,
                 num_stages: int,
                 stage_loss_weights: Sequence[float],
                 semantic_roi_extractor: Optional[dict] = None,
                 semantic_head: Optional[dict] = None,
                 semantic_fusion: Sequence[str] = SEMANTIC_FUSION_BRANCHES,
                 interleaved: bool = True,
                 mask_info_flow: bool = True,
                 **kwargs) -> None:
        unknown = set(semantic_fusion) - set(SEMANTIC_FUSION_BRANCHES)
        if unknown:
            raise ValueError(f'roi_head.semantic_fusion has {sorted(unknown)}; use a tuple of '
                             f'{SEMANTIC_FUSION_BRANCHES}.')
        if semantic_head is not None and semantic_roi_extractor is None:
            raise ValueError('roi_head.semantic_head needs a semantic_roi_extractor (e.g. a '
                             'SingleRoIExtractor with featmap_strides=[8]) to pool its '
                             'features for the RoIs.')
        super().__init__(num_stages=num_stages, stage_loss_weights=stage_loss_weights, **kwargs)
        if semantic_head is not None:
            self.semantic_roi_extractor = MODELS.build(semantic_roi_extractor)
            self.semantic_head = MODELS.build(semantic_head)
        self.semantic_fusion = tuple(semantic_fusion)
        self.interleaved = interleaved
        self.mask_info_flow = mask_info_flow
        if self.with_mask and mask_info_flow:
            missing = [stage for stage, head in enumerate(self.mask_head)
                       if stage > 0 and not getattr(head, 'with_conv_res', False)]
            if missing:
                raise ValueError(f'roi_head.mask_head of stages {missing} must be HTCMaskHead '
                                 'with with_conv_res=True to take the previous stage\'s '
                                 'features (mask_info_flow=True).')

    @property
    def with_semantic(self) -> bool:
        return getattr(self, 'semantic_head', None) is not None

    def _semantic_features(self, x: Sequence[Tensor]) -> Optional[Tensor]:
        """The semantic head's (B, C, h, w) features, None without one."""
        return self.semantic_head(x)[1] if self.with_semantic else None

    def _fuse_semantic(self, branch: str, roi_feats: Tensor, rois: Tensor,
                       semantic_feat: Optional[Tensor]) -> Tensor:
        """``roi_feats`` plus the RoIs' pooled semantic features when
        ``branch`` is in ``semantic_fusion``."""
        if semantic_feat is None or branch not in self.semantic_fusion:
            return roi_feats
        pooled = self.semantic_roi_extractor([semantic_feat], rois)
        if pooled.shape[-2:] != roi_feats.shape[-2:]:
            pooled = F.adaptive_avg_pool2d(pooled, roi_feats.shape[-2:])
        return roi_feats + pooled

    def _bbox_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor,
                      semantic_feat: Optional[Tensor] = None) -> dict:
        """Stage ``stage``'s ``cls_score`` and ``bbox_pred`` for (K, 5) RoIs."""
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = self._fuse_semantic('bbox', extractor(x[:extractor.num_inputs], rois),
                                         rois, semantic_feat)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred)

    def _mask_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor,
                      semantic_feat: Optional[Tensor] = None) -> dict:
        """Stage ``stage``'s ``mask_preds`` (K, C, 28, 28) for (K, 5) RoIs,
        after the information flow through the heads of stages before it."""
        extractor = self.mask_roi_extractor[stage]
        mask_feats = self._fuse_semantic('mask', extractor(x[:extractor.num_inputs], rois),
                                         rois, semantic_feat)
        last_feat = None
        if self.mask_info_flow:
            for previous in range(stage):
                last_feat = self.mask_head[previous](mask_feats, last_feat, return_logits=False)
        mask_preds = self.mask_head[stage](mask_feats, last_feat, return_feat=False)
        return dict(mask_preds=mask_preds)

    # ---- training -------------------------------------------------------
    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> dict:
        """``loss_semantic_seg`` (with a semantic head) and every stage's
        ``s{t}.``-prefixed, weighted losses.

        Args: as :meth:`StandardRoIHead.loss`; with a semantic head every
            sample needs ``gt_sem_seg`` (1, H, W) padded to the batch shape
            (``DetDataPreprocessor(pad_seg=True)``).
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        batch_gt_instances = [sample.gt_instances for sample in batch_data_samples]
        losses = dict()
        semantic_feat = None
        if self.with_semantic:
            if not all('gt_sem_seg' in sample for sample in batch_data_samples):
                raise KeyError('HTC\'s semantic_head needs gt_sem_seg in every sample: load '
                               'the maps with LoadAnnotations(with_seg=True) and a dataset '
                               'data_prefix with seg=...')
            gt_semantic_segs = torch.stack(
                [sample.gt_sem_seg.sem_seg for sample in batch_data_samples])
            semantic_pred, semantic_feat = self.semantic_head(x)
            losses['loss_semantic_seg'] = self.semantic_head.loss(semantic_pred,
                                                                  gt_semantic_segs)
        results_list = rpn_results_list
        for stage in range(self.num_stages):
            stage_cfg = self.train_cfg[stage]
            assigner, sampler = self.bbox_assigner[stage], self.bbox_sampler[stage]
            sampling_results = self.assign_and_sample(results_list, batch_data_samples,
                                                      assigner, sampler)
            rois = bbox2roi([res.priors for res in sampling_results])
            bbox_results = self._bbox_forward(stage, x, rois, semantic_feat)
            outputs = self.bbox_head[stage].loss_and_target(
                bbox_results['cls_score'], bbox_results['bbox_pred'], rois, sampling_results,
                stage_cfg)
            stage_losses = dict(outputs['loss_bbox'])
            refined = None
            if stage < self.num_stages - 1 or (self.with_mask and self.interleaved):
                with torch.no_grad():
                    refined = self.bbox_head[stage].refine_bboxes(
                        sampling_results, dict(bbox_results, rois=rois,
                                               bbox_targets=outputs['bbox_targets']),
                        batch_img_metas)
            if self.with_mask:
                if self.interleaved and refined is not None:
                    with torch.no_grad():
                        sampling_results = self.assign_and_sample(refined, batch_data_samples,
                                                                  assigner, sampler)
                pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
                mask_preds = self._mask_forward(stage, x, pos_rois, semantic_feat)['mask_preds']
                stage_losses.update(self.mask_head[stage].loss_and_target(
                    mask_preds, sampling_results, batch_gt_instances, stage_cfg)['loss_mask'])
            weight = self.stage_loss_weights[stage]
            for name, value in stage_losses.items():
                losses[f's{stage}.{name}'] = value * weight if 'loss' in name else value
            results_list = refined
            if stage < self.num_stages - 1 and results_list is None:  # no RoIs in the batch
                break
        return losses

    # ---- inference ------------------------------------------------------
    def _stage_mask_probs(self, x: Sequence[Tensor], rois: Tensor,
                          semantic_feat: Optional[Tensor] = None) -> Tensor:
        """(K, C, 28, 28) mask probabilities of the last stage's head."""
        return self._mask_forward(self.num_stages - 1, x, rois, semantic_feat)[
            'mask_preds'].sigmoid()

    def predict(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: SampleList, rescale: bool = False) -> List[InstanceData]:
        """Detections per image (``bboxes``, ``scores``, ``labels`` and, with
        masks, ``masks``), as :meth:`CascadeRoIHead.predict` with the semantic
        features fused into the RoI features."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        semantic_feat = self._semantic_features(x)
        # The mask head pools from the boxes in the network input's pixels and
        # rescales boxes and masks itself.
        results_list = self.predict_bbox(x, batch_img_metas, rpn_results_list, self.test_cfg,
                                         rescale=rescale and not self.with_mask,
                                         semantic_feat=semantic_feat)
        if self.with_mask:
            results_list = self.predict_mask(x, batch_img_metas, results_list, rescale=rescale,
                                             semantic_feat=semantic_feat)
        return results_list

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[SampleList] = None) -> tuple:
        """Raw outputs: the stage-averaged class logits and the last stage's
        ``bbox_pred`` per image; with masks, also the last stage's mask
        probabilities of the refined RoIs per image."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        semantic_feat = self._semantic_features(x)
        proposals = [res.bboxes for res in rpn_results_list]
        num_proposals_per_img = tuple(len(p) for p in proposals)
        rois, cls_scores, bbox_preds = self._refine_roi(x, bbox2roi(proposals), batch_img_metas,
                                                        num_proposals_per_img,
                                                        semantic_feat=semantic_feat)
        outputs = (cls_scores, bbox_preds)
        if self.with_mask:
            mask_probs = self._stage_mask_probs(x, torch.cat(rois), semantic_feat)
            outputs += (list(mask_probs.split(num_proposals_per_img)), )
        return outputs
