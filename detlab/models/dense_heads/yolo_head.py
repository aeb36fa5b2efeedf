"""YOLOV3Head (Redmon and Farhadi, "YOLOv3: An Incremental Improvement", 2018).

Per level a 3x3 ConvModule "bridge" and a 1x1 predictor of ``5 + num_classes``
numbers per anchor: x, y (sigmoid: the centre within the cell), log w, log h
(against the anchor), objectness and per-class logits. Training assigns gts to
the anchors of the cell holding their centre (``GridAssigner``); inference
multiplies class scores by objectness and runs the shared post-processing of
:class:`BaseDenseHead`.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule, is_norm
from mmengine.model import bias_init_with_prob, constant_init, normal_init
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.models.task_modules.assigners import NEGATIVE_GT_IND
from detlab.registry import MODELS, TASK_UTILS
from detlab.structures.errors import AssertionValueError
from ..utils import (assigns_whole_batch, filter_scores_and_topk, images_to_levels,
                     pad_gt_instances)
from .base_dense_head import BaseDenseHead

#: Objects per image the objectness bias initialisation assumes at a 608-pixel input
#: (as ultralytics/yolov3 and MMDetection).
PRIOR_OBJECTS_PER_IMAGE = 8
PRIOR_INPUT_SIZE = 608


@MODELS.register_module()
class YOLOV3Head(BaseDenseHead):
    """MMDetection 3.3's YOLOV3Head: arguments, state_dict keys
    (``convs_bridge.{i}``, ``convs_pred.{i}``), losses and detections.

    Args:
        num_classes (int): Foreground classes.
        in_channels (Sequence[int]): Channels of each input level.
        out_channels (Sequence[int]): Channels of each level's bridge conv.
        anchor_generator (dict): ``YOLOAnchorGenerator`` config.
        bbox_coder (dict): ``YOLOBBoxCoder`` config.
        featmap_strides (Sequence[int]): Stride of each level, descending.
        one_hot_smoother (float): Label smoothing of the class targets.
        conv_cfg, norm_cfg, act_cfg (dict): Of the bridge convs.
        loss_cls, loss_conf, loss_xy, loss_wh (dict): Losses of the class
            logits, objectness, centre offsets (BCE with logits on targets in
            (0, 1)) and log sizes (MSE).
        train_cfg (dict): ``assigner`` (GridAssigner), optional ``sampler``.
        test_cfg (dict): ``conf_thr`` (objectness), ``score_thr``,
            ``nms_pre``, ``nms``, ``max_per_img``, ``min_bbox_size``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int] = (1024, 512, 256),
                 anchor_generator: dict = dict(
                     type='YOLOAnchorGenerator',
                     base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                 [(30, 61), (62, 45), (59, 119)],
                                 [(10, 13), (16, 30), (33, 23)]],
                     strides=[32, 16, 8]),
                 bbox_coder: dict = dict(type='YOLOBBoxCoder'),
                 featmap_strides: Sequence[int] = (32, 16, 8),
                 one_hot_smoother: float = 0.,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='LeakyReLU', negative_slope=0.1),
                 loss_cls: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                       loss_weight=1.0),
                 loss_conf: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                        loss_weight=1.0),
                 loss_xy: dict = dict(type='CrossEntropyLoss', use_sigmoid=True,
                                      loss_weight=1.0),
                 loss_wh: dict = dict(type='MSELoss', loss_weight=1.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=None)
        if not len(in_channels) == len(out_channels) == len(featmap_strides):
            raise AssertionValueError(
                f'YOLOV3Head: in_channels {list(in_channels)}, out_channels '
                f'{list(out_channels)} and featmap_strides {list(featmap_strides)} need one '
                'entry per level each')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.featmap_strides = featmap_strides
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if train_cfg:
            self.assigner = TASK_UTILS.build(train_cfg['assigner'])
            self.sampler = TASK_UTILS.build(train_cfg.get('sampler') or dict(type='PseudoSampler'))
        self.one_hot_smoother = one_hot_smoother
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.prior_generator = TASK_UTILS.build(anchor_generator)
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_conf = MODELS.build(loss_conf)
        self.loss_xy = MODELS.build(loss_xy)
        self.loss_wh = MODELS.build(loss_wh)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        if len(self.prior_generator.num_base_priors) != len(featmap_strides):
            raise AssertionValueError(
                f'YOLOV3Head: the anchor generator has {self.prior_generator.num_levels} levels, '
                f'featmap_strides {list(featmap_strides)}')
        self._init_layers()

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.featmap_strides)

    @property
    def num_attrib(self) -> int:
        """int: Numbers predicted per anchor: box (4), objectness (1), classes."""
        return 5 + self.num_classes

    def _init_layers(self) -> None:
        self.convs_bridge = nn.ModuleList([
            ConvModule(in_ch, out_ch, 3, padding=1, conv_cfg=self.conv_cfg,
                       norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
            for in_ch, out_ch in zip(self.in_channels, self.out_channels)])
        self.convs_pred = nn.ModuleList([
            nn.Conv2d(out_ch, self.num_base_priors * self.num_attrib, 1)
            for out_ch in self.out_channels])

    def init_weights(self) -> None:
        """Normal(0, 0.01) convs, unit norms; objectness biases for about 8 objects
        per 608-pixel image, class biases for a 0.01 prior probability."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                normal_init(module, mean=0, std=0.01)
            if is_norm(module):
                constant_init(module, 1)
        for conv_pred, stride in zip(self.convs_pred, self.featmap_strides):
            bias = conv_pred.bias.reshape(self.num_base_priors, -1)
            cells = (PRIOR_INPUT_SIZE / stride)**2
            nn.init.constant_(bias.data[:, 4],
                              bias_init_with_prob(PRIOR_OBJECTS_PER_IMAGE / cells))
            nn.init.constant_(bias.data[:, 5:], bias_init_with_prob(0.01))

    def forward(self, x: Sequence[Tensor]) -> Tuple[Tuple[Tensor, ...]]:
        """Per level (B, C_l, H, W) -> (B, A * (5 + num_classes), H, W), returned
        as MMDetection does: a one-element tuple holding the tuple of levels."""
        if len(x) != self.num_levels:
            raise AssertionValueError(f'YOLOV3Head: got {len(x)} feature levels, built for '
                                      f'{self.num_levels}')
        return tuple(pred(bridge(feat)) for feat, bridge, pred in
                     zip(x, self.convs_bridge, self.convs_pred)),

    # ---- inference --------------------------------------------------------
    def predict_by_feat(self,
                        pred_maps: Sequence[Tensor],
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Detections per image: boxes decoded for every anchor, those with
        objectness below ``conf_thr`` dropped, (anchor, class) pairs scoring
        above ``score_thr`` (the ``nms_pre`` best), then the shared
        post-processing with objectness as the score factor.

        Args:
            pred_maps (Sequence[Tensor]): (B, A * (5 + C), H, W) per level.
            batch_img_metas (list[dict]): Per image (``scale_factor`` with ``rescale``).
            cfg (dict, optional): Overrides ``test_cfg``.
            rescale (bool): Boxes in the original image's pixels.
            with_nms (bool): Run NMS and ``max_per_img``.

        Returns:
            list[InstanceData]: ``bboxes`` (M, 4), ``scores`` (M,), ``labels`` (M,).
        """
        if batch_img_metas is None:
            raise ValueError('YOLOV3Head.predict_by_feat needs batch_img_metas')
        if len(pred_maps) != self.num_levels:
            raise AssertionValueError(f'YOLOV3Head: got {len(pred_maps)} levels of pred_maps, '
                                      f'built for {self.num_levels}')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None:
            raise ValueError('YOLOV3Head.predict_by_feat needs a test_cfg or a cfg argument')
        featmap_sizes = [pred_map.shape[-2:] for pred_map in pred_maps]
        anchors = torch.cat(self.prior_generator.grid_priors(
            featmap_sizes, dtype=torch.float32, device=pred_maps[0].device))
        preds = self._flatten_levels(pred_maps).float()
        strides = torch.cat([preds.new_full((size[0] * size[1] * self.num_base_priors, ), s)
                             for size, s in zip(featmap_sizes, self.featmap_strides)])
        bbox_preds = torch.cat([preds[..., :2].sigmoid(), preds[..., 2:4]], dim=-1)
        all_bboxes = self.bbox_coder.decode(anchors, bbox_preds, strides[:, None])
        all_objectness = preds[..., 4].sigmoid()
        all_scores = preds[..., 5:].sigmoid()
        conf_thr = cfg.get('conf_thr', -1)
        results_list = []
        for bboxes, scores, objectness, img_meta in zip(all_bboxes, all_scores,
                                                        all_objectness, batch_img_metas):
            if conf_thr > 0:
                confident = objectness >= conf_thr
                bboxes, scores, objectness = (bboxes[confident], scores[confident],
                                              objectness[confident])
            scores, labels, keep_idxs, _ = filter_scores_and_topk(
                scores, cfg.get('score_thr', 0), cfg.get('nms_pre', -1))
            results = InstanceData(scores=scores, labels=labels, bboxes=bboxes[keep_idxs],
                                   score_factors=objectness[keep_idxs])
            results_list.append(self._bbox_post_process(results, cfg, rescale=rescale,
                                                        with_nms=with_nms, img_meta=img_meta))
        return results_list

    def _flatten_levels(self, pred_maps: Sequence[Tensor]) -> Tensor:
        """(B, A * K, H, W) per level -> (B, sum of H * W * A, K), in the priors' order."""
        batch = pred_maps[0].shape[0]
        return torch.cat([pred.permute(0, 2, 3, 1).reshape(batch, -1, self.num_attrib)
                          for pred in pred_maps], dim=1)

    # ---- training ---------------------------------------------------------
    def loss_by_feat(self, pred_maps: Sequence[Tensor], batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None) -> dict:
        """Losses per level: ``loss_cls``, ``loss_conf``, ``loss_xy``, ``loss_wh``,
        each a list of one scalar per level. Objectness counts positives and
        negatives (ignored anchors not); the other three the positives only.

        The targets of the whole batch come at once when the assigner and
        sampler say they can (``assigner.can_assign_batch(...)`` and
        ``sampler.supports_batch``: GridAssigner with PseudoSampler), else
        image by image; both give the same maps."""
        featmap_sizes = [pred_map.shape[-2:] for pred_map in pred_maps]
        device = pred_maps[0].device
        mlvl_anchors = self.prior_generator.grid_priors(featmap_sizes, dtype=torch.float32,
                                                        device=device)
        anchors = torch.cat(mlvl_anchors)
        strides = torch.cat([torch.full((len(level), ), stride, device=device)
                             for level, stride in zip(mlvl_anchors, self.featmap_strides)])
        if assigns_whole_batch(self.assigner, self.sampler, batch_gt_instances,
                               batch_gt_instances_ignore):
            target_maps, neg_maps = self._get_targets_batched(anchors, strides, featmap_sizes,
                                                              batch_gt_instances)
        else:
            target_maps, neg_maps = self._get_targets_by_image(anchors, strides, featmap_sizes,
                                                               batch_gt_instances)
        num_level_anchors = [len(level) for level in mlvl_anchors]
        losses = [self.loss_by_feat_single(pred_map, target_map, neg_map)
                  for pred_map, target_map, neg_map in zip(
                      pred_maps, images_to_levels(target_maps, num_level_anchors),
                      images_to_levels(neg_maps, num_level_anchors))]
        return {key: [level[i] for level in losses]
                for i, key in enumerate(('loss_cls', 'loss_conf', 'loss_xy', 'loss_wh'))}

    def loss_by_feat_single(self, pred_map: Tensor, target_map: Tensor,
                            neg_map: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Losses of one level.

        Args:
            pred_map (Tensor): (B, A * (5 + C), H, W) raw predictions.
            target_map (Tensor): (B, H * W * A, 5 + C): encoded box, objectness
                (1 on positives) and class targets.
            neg_map (Tensor): (B, H * W * A) 1 on negatives.
        """
        pred_map = pred_map.permute(0, 2, 3, 1).reshape(len(pred_map), -1, self.num_attrib)
        pos_mask = target_map[..., 4]
        # An anchor is positive or negative, never both (assignment overwrites).
        pos_and_neg_mask = (neg_map.float() + pos_mask).clamp(max=1.)
        pos_mask = pos_mask[..., None]
        loss_cls = self.loss_cls(pred_map[..., 5:], target_map[..., 5:], weight=pos_mask)
        loss_conf = self.loss_conf(pred_map[..., 4], target_map[..., 4], weight=pos_and_neg_mask)
        loss_xy = self.loss_xy(pred_map[..., :2], target_map[..., :2], weight=pos_mask)
        loss_wh = self.loss_wh(pred_map[..., 2:4], target_map[..., 2:4], weight=pos_mask)
        return loss_cls, loss_conf, loss_xy, loss_wh

    @torch.no_grad()
    def _get_targets_batched(self, anchors: Tensor, strides: Tensor,
                             featmap_sizes: List[Tuple[int, int]],
                             batch_gt_instances: List[InstanceData]) -> Tuple[Tensor, Tensor]:
        """The maps of :meth:`_get_targets_single` for every image at once, from
        ``assigner.assign_batch`` on gts padded per batch: no Python loop over
        images or boxes and no host-device sync.

        Args:
            anchors (Tensor): (N, 4) anchors of all levels.
            strides (Tensor): (N,) stride of each anchor's level.
            featmap_sizes (list): (H, W) of each level.
            batch_gt_instances (list[InstanceData]): ``bboxes`` (K_i, 4),
                ``labels`` (K_i,) per image.

        Returns:
            tuple: ``target_maps`` (B, N, 5 + C) and ``neg_maps`` (B, N) uint8.
        """
        batch = len(batch_gt_instances)
        gt_bboxes, gt_labels, gt_valid = pad_gt_instances(batch_gt_instances, anchors.device)
        responsible = self.batch_responsible_flags(featmap_sizes, gt_bboxes, gt_valid)
        gt_inds, _ = self.assigner.assign_batch(anchors, responsible, gt_bboxes, gt_valid)
        positive = (gt_inds > NEGATIVE_GT_IND)[..., None]  # (B, N, 1)
        matched = (gt_inds - 1).clamp(min=0)  # (B, N)
        matched_bboxes = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))
        box_targets = self.bbox_coder.encode(
            anchors.expand(batch, -1, -1).reshape(-1, 4), matched_bboxes.reshape(-1, 4),
            strides.expand(batch, -1).reshape(-1)).reshape(batch, -1, 4)
        classes = torch.arange(self.num_classes, device=anchors.device)
        class_targets = self._smooth((gt_labels.gather(1, matched)[..., None] == classes).float())
        target_map = torch.cat([box_targets, torch.ones_like(box_targets[..., :1]),
                                class_targets], dim=-1)
        target_map = torch.where(positive, target_map, 0.)
        neg_map = (gt_inds == NEGATIVE_GT_IND).to(torch.uint8)
        return target_map, neg_map

    def _get_targets_by_image(self, anchors: Tensor, strides: Tensor,
                              featmap_sizes: List[Tuple[int, int]],
                              batch_gt_instances: List[InstanceData]) -> Tuple[Tensor, Tensor]:
        """The maps of :meth:`_get_targets_batched`, image by image through
        ``assigner.assign`` and ``sampler.sample`` (MMDetection's path), for
        assigners and samplers that cannot take the batch at once."""
        target_maps, neg_maps = [], []
        for gt_instances in batch_gt_instances:
            responsible = torch.cat(self.responsible_flags(featmap_sizes, gt_instances.bboxes,
                                                           anchors.device))
            target_map, neg_map = self._get_targets_single(anchors, strides, responsible,
                                                           gt_instances)
            target_maps.append(target_map)
            neg_maps.append(neg_map)
        return torch.stack(target_maps), torch.stack(neg_maps)

    def _smooth(self, one_hot: Tensor) -> Tensor:
        """Class targets with ``one_hot_smoother`` label smoothing."""
        if self.one_hot_smoother == 0:
            return one_hot
        return one_hot * (1 - self.one_hot_smoother) + self.one_hot_smoother / self.num_classes

    @torch.no_grad()
    def _get_targets_single(self, anchors: Tensor, strides: Tensor, responsible: Tensor,
                            gt_instances: InstanceData) -> Tuple[Tensor, Tensor]:
        """Targets of one image.

        Args:
            anchors (Tensor): (N, 4) anchors of all levels.
            strides (Tensor): (N,) stride of each anchor's level.
            responsible (Tensor): (N,) uint8, anchors of cells holding a gt centre.
            gt_instances (InstanceData): ``bboxes`` (K, 4), ``labels`` (K,).

        Returns:
            tuple: ``target_map`` (N, 5 + C) and ``neg_map`` (N,) uint8.
        """
        pred_instances = InstanceData(priors=anchors, responsible_flags=responsible)
        assign_result = self.assigner.assign(pred_instances, gt_instances)
        sampling = self.sampler.sample(assign_result, pred_instances, gt_instances)
        target_map = anchors.new_zeros(anchors.size(0), self.num_attrib)
        target_map[sampling.pos_inds, :4] = self.bbox_coder.encode(
            sampling.pos_priors, sampling.pos_gt_bboxes, strides[sampling.pos_inds])
        target_map[sampling.pos_inds, 4] = 1
        one_hot = self._smooth(F.one_hot(gt_instances.labels, num_classes=self.num_classes).float())
        target_map[sampling.pos_inds, 5:] = one_hot[sampling.pos_assigned_gt_inds]
        neg_map = anchors.new_zeros(anchors.size(0), dtype=torch.uint8)
        neg_map[sampling.neg_inds] = 1
        return target_map, neg_map

    def responsible_flags(self, featmap_sizes: List[Tuple[int, int]], gt_bboxes: Tensor,
                          device: torch.device) -> List[Tensor]:
        """Per level, (H * W * A,) uint8: 1 on the anchors of every cell that
        holds a gt box's centre.

        Args:
            featmap_sizes (list): (H, W) of each level.
            gt_bboxes (Tensor): (K, 4) gt boxes.
            device (torch.device): Device of the flags.
        """
        if len(featmap_sizes) != self.num_levels:
            raise AssertionValueError(f'YOLOV3Head.responsible_flags: {len(featmap_sizes)} '
                                      f'feature map sizes for {self.num_levels} levels')
        centers = ((gt_bboxes[:, :2] + gt_bboxes[:, 2:]) * 0.5).to(device)
        flags = []
        for (stride_w, stride_h), (feat_h, feat_w), num_priors in zip(
                self.prior_generator.strides, featmap_sizes,
                self.prior_generator.num_base_priors):
            grid_x = torch.floor(centers[:, 0] / stride_w).long()
            grid_y = torch.floor(centers[:, 1] / stride_h).long()
            cells = torch.zeros(feat_h * feat_w, dtype=torch.uint8, device=device)
            cells[grid_y * feat_w + grid_x] = 1
            flags.append(cells[:, None].expand(-1, num_priors).reshape(-1))
        return flags

    def batch_responsible_flags(self, featmap_sizes: List[Tuple[int, int]], gt_bboxes: Tensor,
                                gt_valid: Tensor) -> Tensor:
        """:meth:`responsible_flags` of every image at once, levels concatenated.

        Args:
            featmap_sizes (list): (H, W) of each level.
            gt_bboxes (Tensor): (B, K, 4) gts, padded.
            gt_valid (Tensor): (B, K) bool, False on padding.

        Returns:
            Tensor: (B, N) bool, N the anchors of all levels.
        """
        if len(featmap_sizes) != self.num_levels:
            raise AssertionValueError(f'YOLOV3Head.batch_responsible_flags: '
                                      f'{len(featmap_sizes)} feature map sizes for '
                                      f'{self.num_levels} levels')
        batch = gt_bboxes.shape[0]
        centers = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5  # (B, K, 2)
        flags = []
        for (stride_w, stride_h), (feat_h, feat_w), num_priors in zip(
                self.prior_generator.strides, featmap_sizes,
                self.prior_generator.num_base_priors):
            num_cells = feat_h * feat_w
            grid_x = torch.floor(centers[..., 0] / stride_w).long()
            grid_y = torch.floor(centers[..., 1] / stride_h).long()
            cells = grid_y * feat_w + grid_x
            # A negative cell index counts from the end, as indexing does in the
            # per-image flags; padded gts mark nothing (value 0 at cell 0).
            cells = torch.where(cells < 0, cells + num_cells, cells)
            cells = torch.where(gt_valid, cells, 0)
            marked = torch.zeros((batch, num_cells), dtype=torch.uint8, device=gt_bboxes.device)
            marked = marked.scatter_reduce(1, cells, gt_valid.to(torch.uint8), reduce='amax')
            flags.append(marked.bool()[:, :, None].expand(-1, -1, num_priors).reshape(batch, -1))
        return torch.cat(flags, dim=1)
