"""CascadeRoIHead: the R-CNN stages of Cascade R-CNN and Cascade Mask R-CNN."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import ModuleList
from mmengine.structures import InstanceData
from torch import Tensor

from detlab.registry import MODELS, TASK_UTILS
from detlab.structures import SampleList, bbox2roi
from ..utils import empty_instances
from .standard_roi_head import StandardRoIHead

StageConfigs = Union[dict, Sequence[dict]]


def per_stage(cfg: StageConfigs, num_stages: int, key: str) -> list:
    """``cfg`` repeated for every stage, or the list given (of length ``num_stages``)."""
    if isinstance(cfg, (list, tuple)):
        if len(cfg) != num_stages:
            raise ValueError(f'roi_head.{key} has {len(cfg)} entries for num_stages='
                             f'{num_stages}; give one per stage or a single dict for all.')
        return list(cfg)
    return [cfg] * num_stages


@MODELS.register_module()
class CascadeRoIHead(StandardRoIHead):
    """A chain of box heads, each refining the boxes of the one before
    (Cai and Vasconcelos, 2018), optionally with a mask head per stage.

    Training: stage ``t`` assigns and samples its proposals with
    ``train_cfg[t]`` (higher IoU thresholds in later stages), computes its
    losses (logged as ``s{t}.loss_cls``, ``s{t}.acc``, ``s{t}.loss_bbox``,
    ``s{t}.loss_mask``, the losses weighted by ``stage_loss_weights[t]``),
    and its regressed sampled RoIs, without the gt boxes the sampler added,
    are the next stage's proposals (no gradient flows between stages).
    Inference: every stage classifies and regresses the previous stage's
    boxes; the class logits of all stages are averaged, and the last
    stage's boxes and head give the detections. With masks, every stage's
    mask head predicts on the detected boxes and their probabilities are
    averaged before the last head pastes them.

    State_dict keys as MMDetection's: ``bbox_roi_extractor.{t}``,
    ``bbox_head.{t}``, ``mask_roi_extractor.{t}``, ``mask_head.{t}``. As in
    MMDetection, ``_bbox_forward`` and ``_mask_forward`` take the stage first;
    every method of :class:`StandardRoIHead` that calls them is overridden.

    Args:
        num_stages (int): Number of stages.
        stage_loss_weights (list[float]): Weight of each stage's losses.
        bbox_roi_extractor (dict | list[dict]): One for all stages or one
            per stage.
        bbox_head (dict | list[dict]): One for all stages or one per stage
            (Cascade R-CNN's are ``reg_class_agnostic``).
        mask_roi_extractor (dict | list[dict], optional): Without it the
            mask heads pool with the box extractors.
        mask_head (dict | list[dict], optional): e.g. ``FCNMaskHead``.
        shared_head: Not supported (as in MMDetection); must be None.
        train_cfg (list[dict], optional): One R-CNN ``train_cfg`` per stage
            (``assigner``, ``sampler``, ``pos_weight``, ``mask_size``).
        test_cfg (dict, optional): ``score_thr``, ``nms``, ``max_per_img``,
            ``mask_thr_binary``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_stages: int,
                 stage_loss_weights: Sequence[float],
                 bbox_roi_extractor: Optional[StageConfigs] = None,
                 bbox_head: Optional[StageConfigs] = None,
                 mask_roi_extractor: Optional[StageConfigs] = None,
                 mask_head: Optional[StageConfigs] = None,
                 shared_head: Optional[dict] = None,
                 train_cfg: Optional[Sequence[dict]] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if shared_head is not None:
            raise ValueError('CascadeRoIHead does not take a shared_head (C4 models); use '
                             'StandardRoIHead or an FPN neck.')
        if num_stages < 1 or len(stage_loss_weights) != num_stages:
            raise ValueError(f'roi_head.stage_loss_weights has {len(stage_loss_weights)} '
                             f'weights for num_stages={num_stages}; give one per stage.')
        if train_cfg is not None and (not isinstance(train_cfg, (list, tuple))
                                      or len(train_cfg) != num_stages):
            raise ValueError(f'train_cfg.rcnn of a CascadeRoIHead must be a list of '
                             f'{num_stages} dicts (one per stage), got {train_cfg!r:.200}')
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        super().__init__(bbox_roi_extractor=bbox_roi_extractor, bbox_head=bbox_head,
                         mask_roi_extractor=mask_roi_extractor, mask_head=mask_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, init_cfg=init_cfg)

    def init_bbox_head(self, bbox_roi_extractor: StageConfigs, bbox_head: StageConfigs) -> None:
        """One box extractor and one box head per stage."""
        self.bbox_roi_extractor = ModuleList(
            MODELS.build(cfg) for cfg in per_stage(bbox_roi_extractor, self.num_stages,
                                                   'bbox_roi_extractor'))
        self.bbox_head = ModuleList(
            MODELS.build(cfg) for cfg in per_stage(bbox_head, self.num_stages, 'bbox_head'))

    def init_mask_head(self, mask_roi_extractor: Optional[StageConfigs],
                       mask_head: StageConfigs) -> None:
        """One mask head (and extractor, unless the box ones are shared) per stage."""
        self.mask_head = ModuleList(
            MODELS.build(cfg) for cfg in per_stage(mask_head, self.num_stages, 'mask_head'))
        self.share_roi_extractor = mask_roi_extractor is None
        if self.share_roi_extractor:
            self.mask_roi_extractor = self.bbox_roi_extractor
        else:
            self.mask_roi_extractor = ModuleList(
                MODELS.build(cfg) for cfg in per_stage(mask_roi_extractor, self.num_stages,
                                                       'mask_roi_extractor'))

    def init_assigner_sampler(self) -> None:
        """An assigner and a sampler per stage from the stage's ``train_cfg``."""
        self.bbox_assigner, self.bbox_sampler = [], []
        for stage_cfg in self.train_cfg or ():
            self.bbox_assigner.append(TASK_UTILS.build(stage_cfg['assigner']))
            self.bbox_sampler.append(TASK_UTILS.build(stage_cfg['sampler'],
                                                      default_args=dict(context=self)))

    def _bbox_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor) -> dict:
        """Stage ``stage``'s ``cls_score`` (K, C + 1), ``bbox_pred`` (K, 4 or
        4C) and pooled ``bbox_feats`` for (K, 5) RoIs."""
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = extractor(x[:extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(self, stage: int, x: Sequence[Tensor], rois: Tensor) -> dict:
        """Stage ``stage``'s ``mask_preds`` (K, C, 28, 28) for (K, 5) RoIs."""
        extractor = self.mask_roi_extractor[stage]
        mask_feats = extractor(x[:extractor.num_inputs], rois)
        return dict(mask_preds=self.mask_head[stage](mask_feats), mask_feats=mask_feats)

    # ---- training -------------------------------------------------------
    def loss(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
             batch_data_samples: SampleList) -> dict:
        """Every stage's losses, ``s{t}.``-prefixed and weighted.

        Args: as :meth:`StandardRoIHead.loss`.
        """
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        batch_gt_instances = [sample.gt_instances for sample in batch_data_samples]
        losses = dict()
        results_list = rpn_results_list
        for stage in range(self.num_stages):
            stage_cfg = self.train_cfg[stage]
            sampling_results = self.assign_and_sample(results_list, batch_data_samples,
                                                      self.bbox_assigner[stage],
                                                      self.bbox_sampler[stage])
            rois = bbox2roi([res.priors for res in sampling_results])
            bbox_results = self._bbox_forward(stage, x, rois)
            outputs = self.bbox_head[stage].loss_and_target(
                bbox_results['cls_score'], bbox_results['bbox_pred'], rois, sampling_results,
                stage_cfg)
            stage_losses = dict(outputs['loss_bbox'])
            if self.with_mask:
                pos_rois = bbox2roi([res.pos_priors for res in sampling_results])
                mask_preds = self._mask_forward(stage, x, pos_rois)['mask_preds']
                stage_losses.update(self.mask_head[stage].loss_and_target(
                    mask_preds, sampling_results, batch_gt_instances, stage_cfg)['loss_mask'])
            weight = self.stage_loss_weights[stage]
            for name, value in stage_losses.items():
                losses[f's{stage}.{name}'] = value * weight if 'loss' in name else value
            if stage < self.num_stages - 1:
                with torch.no_grad():
                    results_list = self.bbox_head[stage].refine_bboxes(
                        sampling_results, dict(bbox_results, rois=rois,
                                               bbox_targets=outputs['bbox_targets']),
                        batch_img_metas)
                if results_list is None:  # no RoIs in the whole batch
                    break
        return losses

    # ---- inference ------------------------------------------------------
    def _refine_roi(self, x: Sequence[Tensor], rois: Tensor, batch_img_metas: List[dict],
                    num_proposals_per_img: Sequence[int],
                    **bbox_forward_kwargs) -> Tuple[tuple, list, tuple]:
        """Run the stages on (K, 5) RoIs, each regressing the previous one's
        (``bbox_forward_kwargs`` go to every ``_bbox_forward``, e.g. HTC's
        ``semantic_feat``).

        Returns:
            tuple: the last stage's RoIs per image ((K_i, 5) each), the class
            logits averaged over stages per image ((K_i, C + 1)), and the last
            stage's ``bbox_pred`` per image (None entries without a regressor).
        """
        stage_scores = []
        for stage in range(self.num_stages):
            results = self._bbox_forward(stage, x, rois, **bbox_forward_kwargs)
            rois = rois.split(num_proposals_per_img)
            cls_scores = results['cls_score'].split(num_proposals_per_img)
            stage_scores.append(cls_scores)
            bbox_preds = results['bbox_pred']
            bbox_preds = (bbox_preds.split(num_proposals_per_img) if bbox_preds is not None
                          else (None, ) * len(batch_img_metas))
            if stage < self.num_stages - 1:
                head = self.bbox_head[stage]
                refined = []
                for img_rois, img_scores, img_preds, img_meta in zip(
                        rois, cls_scores, bbox_preds, batch_img_metas):
                    if len(img_rois) == 0:
                        continue
                    labels = img_scores[:, :-1].argmax(dim=1)
                    bboxes = head.regress_by_class(img_rois[:, 1:], labels, img_preds, img_meta)
                    refined.append(torch.cat([img_rois[:, :1], bboxes], dim=1))
                rois = torch.cat(refined)
        cls_scores = [sum(scores[i] for scores in stage_scores) / float(len(stage_scores))
                      for i in range(len(batch_img_metas))]
        return rois, cls_scores, bbox_preds

    def predict_bbox(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     rpn_results_list: List[InstanceData], rcnn_test_cfg: Optional[dict],
                     rescale: bool = False, **bbox_forward_kwargs) -> List[InstanceData]:
        """Detections per image: ``bboxes`` (M, 4), ``scores``, ``labels``
        (``bbox_forward_kwargs`` go to every stage's ``_bbox_forward``)."""
        proposals = [res.bboxes for res in rpn_results_list]
        rois = bbox2roi(proposals).to(x[0].device)
        last_head = self.bbox_head[-1]
        if rois.shape[0] == 0:
            return empty_instances(batch_img_metas, rois.device,
                                   num_classes=last_head.num_classes,
                                   score_per_cls=rcnn_test_cfg is None)
        rois, cls_scores, bbox_preds = self._refine_roi(x, rois, batch_img_metas,
                                                        tuple(len(p) for p in proposals),
                                                        **bbox_forward_kwargs)
        return last_head.predict_by_feat(rois, cls_scores, bbox_preds, batch_img_metas,
                                         rcnn_test_cfg=rcnn_test_cfg, rescale=rescale)

    def _stage_mask_probs(self, x: Sequence[Tensor], rois: Tensor, **mask_forward_kwargs
                          ) -> Tensor:
        """(K, C, 28, 28) mask probabilities averaged over the stages' heads."""
        return torch.stack([self._mask_forward(stage, x, rois, **mask_forward_kwargs)
                            ['mask_preds'].sigmoid()
                            for stage in range(self.num_stages)]).mean(dim=0)

    def predict_mask(self, x: Sequence[Tensor], batch_img_metas: List[dict],
                     results_list: List[InstanceData], rescale: bool = False,
                     **mask_forward_kwargs) -> List[InstanceData]:
        """Add ``masks`` (M, H, W) to each image's detections, from the
        stages' averaged mask probabilities (``_stage_mask_probs``, which
        takes ``mask_forward_kwargs``) pasted by the last mask head."""
        mask_rois = bbox2roi([res.bboxes for res in results_list])
        if mask_rois.shape[0] == 0:
            mask_probs = [mask_rois.new_zeros(0, 1, 1, 1) for _ in results_list]
        else:
            mask_probs = self._stage_mask_probs(x, mask_rois, **mask_forward_kwargs).split(
                [len(res) for res in results_list])
        return self.mask_head[-1].predict_by_feat(mask_probs, results_list, batch_img_metas,
                                                  self.test_cfg, rescale=rescale,
                                                  activate_map=True)

    def forward(self, x: Sequence[Tensor], rpn_results_list: List[InstanceData],
                batch_data_samples: Optional[SampleList] = None) -> tuple:
        """Raw outputs: the stage-averaged class logits and the last stage's
        ``bbox_pred`` per image; with masks, also the stage-averaged mask
        probabilities of the refined RoIs per image."""
        batch_img_metas = [sample.metainfo for sample in batch_data_samples]
        proposals = [res.bboxes for res in rpn_results_list]
        num_proposals_per_img = tuple(len(p) for p in proposals)
        rois, cls_scores, bbox_preds = self._refine_roi(x, bbox2roi(proposals), batch_img_metas,
                                                        num_proposals_per_img)
        outputs = (cls_scores, bbox_preds)
        if self.with_mask:
            mask_probs = self._stage_mask_probs(x, torch.cat(rois))
            outputs += (list(mask_probs.split(num_proposals_per_img)), )
        return outputs
