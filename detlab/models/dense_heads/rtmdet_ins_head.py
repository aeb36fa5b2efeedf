"""RTMDet-Ins's heads (Lyu et al., "RTMDet", 2022): RTMDet's box head plus
instance masks from dynamic convolutions, with MMDetection's config keys and
state_dict keys (``kernel_convs``, ``rtm_kernel``, ``mask_head``).

Every point also predicts ``num_gen_params`` numbers: the weights and biases
of ``num_dyconvs`` 1x1 convs (``dyconv_channels`` wide, ReLU between them).
:class:`MaskFeatModule` fuses the levels into ``num_prototypes`` prototype
maps at the first level's stride; an instance's mask logits are its convs
applied to the prototypes plus two channels of coordinates relative to its
point (in units of 8 strides). Training: the Dice loss of the positives' masks,
upsampled to ``mask_loss_stride``, against their gts' masks sampled at that
stride; the assigner's centre prior uses the masks' centres of mass. Boxes,
scores and NMS come from the dense-head base's path; masks are computed for
the kept detections only, in chunks.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.utils import reduce_mean
from ..task_modules.assigners import center_of_mass
from ..utils import gathers_positives, levels_to_anchor_rows, padded_positive_indices
from .rtmdet_head import RTMDetHead

#: Bytes of float working memory one chunk of predicted masks may take at
#: inference (its logits at the input's and the original image's size).
MASK_CHUNK_BYTES = 512 * 1024**2
#: Relative coordinates are divided by this many strides of the instance's level.
COORD_STRIDES = 8


class MaskFeatModule(BaseModule):
    """The prototype branch: levels resized to the first level's size
    (bilinear), concatenated, fused by a 1x1 conv, ``stacked_convs`` 3x3
    ConvModules and a 1x1 projection to ``num_prototypes`` channels.

    Args:
        in_channels (int): Channels of each input level.
        feat_channels (int): Channels of the stacked convs.
        stacked_convs (int): Number of 3x3 convs.
        num_levels (int): Levels fused.
        num_prototypes (int): Output channels.
        act_cfg (dict): Activation of the stacked convs.
        norm_cfg (dict): Norm of the stacked convs.
    """

    def __init__(self,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 num_levels: int = 3,
                 num_prototypes: int = 8,
                 act_cfg: dict = dict(type='ReLU', inplace=True),
                 norm_cfg: dict = dict(type='BN')) -> None:
        super().__init__(init_cfg=None)
        self.num_levels = num_levels
        self.fusion_conv = nn.Conv2d(num_levels * in_channels, in_channels, 1)
        self.stacked_convs = nn.Sequential(*(
            ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, padding=1,
                       act_cfg=act_cfg, norm_cfg=norm_cfg)
            for i in range(stacked_convs)))
        self.projection = nn.Conv2d(feat_channels, num_prototypes, kernel_size=1)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """(B, num_prototypes, H_0, W_0) prototypes from the first ``num_levels`` levels."""
        size = features[0].shape[-2:]
        fused = [features[0]] + [F.interpolate(features[i], size=size, mode='bilinear')
                                 for i in range(1, self.num_levels)]
        return self.projection(self.stacked_convs(self.fusion_conv(torch.cat(fused, dim=1))))


@MODELS.register_module()
class RTMDetInsHead(RTMDetHead):
    """RTMDet-Ins's head with towers shared by the levels.

    Args:
        num_prototypes (int): Prototype channels of :class:`MaskFeatModule`.
        dyconv_channels (int): Width of the dynamic convs.
        num_dyconvs (int): Number of dynamic convs (at least 2).
        mask_loss_stride (int): Stride at which masks are compared in the loss.
        loss_mask (dict): Mask loss (Dice, as MMDetection).
        *args, **kwargs: :class:`RTMDetHead`'s arguments.
    """

    def __init__(self,
                 *args,
                 num_prototypes: int = 8,
                 dyconv_channels: int = 8,
                 num_dyconvs: int = 3,
                 mask_loss_stride: int = 4,
                 loss_mask: dict = dict(type='DiceLoss', loss_weight=2.0, eps=5e-6,
                                        reduction='mean'),
                 **kwargs) -> None:
        if num_dyconvs < 2:
            raise ValueError(f'{type(self).__name__}: num_dyconvs must be >= 2, got {num_dyconvs}')
        self.num_prototypes = num_prototypes
        self.num_dyconvs = num_dyconvs
        self.dyconv_channels = dyconv_channels
        self.mask_loss_stride = mask_loss_stride
        # Weights then biases of each dynamic conv: the first reads the
        # prototypes and the two coordinate channels, the last writes one channel.
        ins = [num_prototypes + 2] + [dyconv_channels] * (num_dyconvs - 1)
        outs = [dyconv_channels] * (num_dyconvs - 1) + [1]
        self.weight_nums = [i * o for i, o in zip(ins, outs)]
        self.bias_nums = outs
        self.num_gen_params = sum(self.weight_nums) + sum(self.bias_nums)
        super().__init__(*args, **kwargs)
        first_stride = self.prior_generator.strides[0][0]
        if first_stride % mask_loss_stride:
            raise ValueError(f'{type(self).__name__}: mask_loss_stride={mask_loss_stride} must '
                             f'divide the first level stride {first_stride}')
        self.loss_mask = MODELS.build(loss_mask)

    def _init_layers(self) -> None:
        super()._init_layers()
        self.kernel_convs = self._tower()
        self.rtm_kernel = self._kernel_predictor()
        self.mask_head = self._mask_feat_module()

    def _kernel_predictor(self) -> nn.Conv2d:
        return nn.Conv2d(self.feat_channels, self.num_gen_params, self.pred_kernel_size,
                         padding=self.pred_kernel_size // 2)

    def _mask_feat_module(self) -> MaskFeatModule:
        return MaskFeatModule(
            in_channels=self.in_channels, feat_channels=self.feat_channels, stacked_convs=4,
            num_levels=len(self.prior_generator.strides), num_prototypes=self.num_prototypes,
            act_cfg=self.act_cfg, norm_cfg=self.norm_cfg)

    @staticmethod
    def _run(tower: Sequence[nn.Module], x: Tensor) -> Tensor:
        for layer in tower:
            x = layer(x)
        return x

    def _level_forward(self, level: int, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Class logits, distances (pixels) and kernels of one level: the
        shared towers, the level's ``Scale`` on the distances (no exp)."""
        stride = self.prior_generator.strides[level][0]
        cls_score = self.rtm_cls(self._run(self.cls_convs, x))
        kernel_pred = self.rtm_kernel(self._run(self.kernel_convs, x))
        reg_feat = self._run(self.reg_convs, x)
        cls_score = self._classify(cls_score, reg_feat, getattr(self, 'rtm_obj', None))
        return cls_score, self.scales[level](self.rtm_reg(reg_feat)) * stride, kernel_pred

    def forward(self, feats: Sequence[Tensor]
                ) -> Tuple[List[Tensor], List[Tensor], List[Tensor], Tensor]:
        """Every level.

        Returns:
            tuple: ``cls_scores`` (B, C, H, W), ``bbox_preds`` (B, 4, H, W)
            distances in pixels and ``kernel_preds`` (B, num_gen_params, H, W)
            per level, and ``mask_feat`` (B, num_prototypes, H_0, W_0).
        """
        mask_feat = self.mask_head(feats)
        outputs = [self._level_forward(level, x) for level, x in enumerate(feats)]
        cls_scores, bbox_preds, kernel_preds = (list(out) for out in zip(*outputs))
        return cls_scores, bbox_preds, kernel_preds, mask_feat

    # ---- masks from kernels ---------------------------------------------
    def parse_dynamic_params(self, flatten_kernels: Tensor) -> Tuple[List[Tensor], List[Tensor]]:
        """(N, num_gen_params) kernels -> per dynamic conv the grouped conv's
        (N * out, in, 1, 1) weights and (N * out,) biases."""
        num_inst = flatten_kernels.size(0)
        splits = torch.split_with_sizes(flatten_kernels, self.weight_nums + self.bias_nums, dim=1)
        weights, biases = splits[:self.num_dyconvs], splits[self.num_dyconvs:]
        weights = [w.reshape(num_inst * b, -1, 1, 1) for w, b in zip(weights, self.bias_nums)]
        biases = [b.reshape(-1) for b in biases]
        return weights, biases

    def mask_logits(self, mask_feats: Tensor, kernels: Tensor, priors: Tensor) -> Tensor:
        """Mask logits of N instances at the prototypes' resolution.

        Args:
            mask_feats (Tensor): (N, num_prototypes, h, w) each instance's
                image's prototypes (or (1, ...) shared by all of them).
            kernels (Tensor): (N, num_gen_params).
            priors (Tensor): (N, 4) x, y, stride_w, stride_h of their points.

        Returns:
            Tensor: (N, h, w).
        """
        num_inst = priors.shape[0]
        h, w = mask_feats.shape[-2:]
        if num_inst == 0:
            return mask_feats.new_zeros((0, h, w))
        coord = self.prior_generator.single_level_grid_priors(
            (h, w), level_idx=0, device=mask_feats.device).reshape(1, -1, 2)
        relative = (priors[:, None, :2] - coord).permute(0, 2, 1) / (
            priors[:, 2].reshape(-1, 1, 1) * COORD_STRIDES)
        x = torch.cat([relative.reshape(num_inst, 2, h, w),
                       mask_feats.expand(num_inst, -1, -1, -1)], dim=1).reshape(1, -1, h, w)
        weights, biases = self.parse_dynamic_params(kernels)
        for i, (weight, bias) in enumerate(zip(weights, biases)):
            x = F.conv2d(x, weight, bias=bias, groups=num_inst)
            if i < self.num_dyconvs - 1:
                x = F.relu(x)
        return x.reshape(num_inst, h, w)

    # ---- training -------------------------------------------------------
    def loss_by_feat(self,
                     cls_scores: List[Tensor],
                     bbox_preds: List[Tensor],
                     kernel_preds: List[Tensor],
                     mask_feat: Tensor,
                     batch_gt_instances: List[InstanceData],
                     batch_img_metas: List[dict],
                     batch_gt_instances_ignore: Optional[List[InstanceData]] = None
                     ) -> Dict[str, object]:
        """RTMDet's ``loss_cls`` and ``loss_bbox`` (per level; the assigner's
        centres are the masks' centres of mass) and ``loss_mask``.

        Args:
            batch_gt_instances (list[InstanceData]): ``bboxes``, ``labels``
                and ``masks`` (BitmapMasks/PolygonMasks or (K, H, W) tensors)
                of the padded batch's size.
        """
        device = mask_feat.device
        gt_masks = [self._gt_mask_tensor(gt, meta, device)
                    for gt, meta in zip(batch_gt_instances, batch_img_metas)]
        # Padded as pad_gt_instances pads the boxes (at least one slot).
        num_gts = max(1, max(len(masks) for masks in gt_masks))
        gt_centers = mask_feat.new_zeros((len(gt_masks), num_gts, 2))
        for i, masks in enumerate(gt_masks):
            if len(masks):
                gt_centers[i, :len(masks)] = center_of_mass(masks)
        featmap_sizes, priors, cls_flat, decoded = self._flat_predictions(cls_scores, bbox_preds)
        targets = self.get_targets(cls_flat.detach(), decoded.detach(), priors, featmap_sizes,
                                   batch_gt_instances, batch_img_metas, gt_centers=gt_centers)
        losses = self._box_losses(cls_flat, decoded, targets, featmap_sizes)
        kernels = levels_to_anchor_rows(kernel_preds, self.num_gen_params)
        losses['loss_mask'] = self.loss_mask_by_feat(mask_feat, kernels, priors, targets.gt_inds,
                                                     gt_masks)
        return losses

    def _gt_mask_tensor(self, gt_instances: InstanceData, img_meta: dict, device) -> Tensor:
        """(K, H, W) bool masks of an image; H, W must be the batch's padded size."""
        masks = gt_instances.get('masks')
        if masks is None:
            raise KeyError(f'{type(self).__name__} trains on gt masks: load them with '
                           "LoadAnnotations(with_mask=True)")
        masks = (masks.to(device=device, dtype=torch.bool) if isinstance(masks, Tensor)
                 else masks.to_tensor(dtype=torch.bool, device=device))
        batch_shape = tuple(img_meta.get('batch_input_shape', masks.shape[-2:]))
        if tuple(masks.shape[-2:]) != batch_shape:
            raise ValueError(f'{type(self).__name__}: gt masks of {tuple(masks.shape[-2:])} '
                             f'but a batch of {batch_shape}; pad them with the batch '
                             '(data_preprocessor pad_mask=True)')
        return masks

    def loss_mask_by_feat(self, mask_feat: Tensor, kernels: Tensor, priors: Tensor,
                          gt_inds: Tensor, gt_masks: List[Tensor]) -> Tensor:
        """Dice loss of every positive's mask, averaged over the positives
        (over processes, at least 1).

        On the CPU the positives are gathered (``nonzero``, MMDetection's
        numbers bit for bit); elsewhere :meth:`_mask_loss_in_slots` computes
        the same loss without making the host wait for the device.

        Args:
            mask_feat (Tensor): (B, num_prototypes, h, w).
            kernels (Tensor): (B, P, num_gen_params).
            priors (Tensor): (P, 4) x, y, stride_w, stride_h.
            gt_inds (Tensor): (B, P) matched gt per point, -1 for negatives.
            gt_masks (list[Tensor]): (K_i, H, W) bool per image.
        """
        if not gathers_positives(gt_inds):
            return self._mask_loss_in_slots(mask_feat, kernels, priors, gt_inds, gt_masks)
        img_inds, prior_inds = (gt_inds >= 0).nonzero(as_tuple=True)
        num_pos = reduce_mean(mask_feat.new_tensor([float(len(img_inds))])).clamp_(min=1).item()
        if len(img_inds) == 0:
            return mask_feat.sum() * 0
        offsets = torch.tensor([0] + [len(m) for m in gt_masks[:-1]],
                               device=gt_inds.device).cumsum(0)
        targets = torch.cat(gt_masks)[offsets[img_inds] + gt_inds[img_inds, prior_inds]]
        logits = self.mask_logits(mask_feat[img_inds], kernels[img_inds, prior_inds],
                                  priors[prior_inds])
        start = self.mask_loss_stride // 2
        targets = targets[:, start::self.mask_loss_stride, start::self.mask_loss_stride]
        return self.loss_mask(self._upsample_for_loss(logits), targets, weight=None,
                              avg_factor=num_pos)

    def _mask_loss_in_slots(self, mask_feat: Tensor, kernels: Tensor, priors: Tensor,
                            gt_inds: Tensor, gt_masks: List[Tensor]) -> Tensor:
        """:meth:`loss_mask_by_feat`'s loss (the same to float rounding) with
        no ``nonzero`` and no ``.item()``: the positives fill a number of slots
        fixed on the host (:func:`padded_positive_indices`), the loss runs over
        every slot with zero weight off the positives, and the positives'
        count stays on the device as the loss's divisor.

        The slots are the most positives the assigner can give: per image
        ``assigner.max_matches_per_gt`` (RTMDet's ``topk``, 13) times its gts,
        at most its points (its points when the assigner does not say). No
        positive is ever left out, but the dynamic convs run for every slot:
        a batch with 100 gts runs them for 1300 masks, a few times its
        positives (each gt usually takes fewer than ``topk`` points), and each
        keeps about 0.85 MiB for backward at a 640x640 input in fp32.
        """
        batch, num_priors = gt_inds.shape
        per_gt = getattr(self.assigner, 'max_matches_per_gt', num_priors)
        num_slots = sum(min(num_priors, per_gt * len(masks)) for masks in gt_masks)
        indices, valid = padded_positive_indices(gt_inds >= 0, num_slots)
        # float32 whatever mask_feat's dtype: a count above 256 is not exact in bf16.
        num_pos = reduce_mean(valid.sum().float()).clamp(min=1)
        if num_slots == 0:  # no gts in the batch: no positives
            return mask_feat.sum() * 0
        img_inds = torch.div(indices, num_priors, rounding_mode='floor')
        prior_inds = indices % num_priors
        logits = self.mask_logits(mask_feat[img_inds], kernels[img_inds, prior_inds],
                                  priors[prior_inds])
        # Each image's gt masks at the loss's stride, padded to the batch's most gts.
        start = self.mask_loss_stride // 2
        sampled = [masks[:, start::self.mask_loss_stride, start::self.mask_loss_stride]
                   for masks in gt_masks]
        targets = sampled[0].new_zeros((batch, max(len(m) for m in sampled))
                                       + sampled[0].shape[1:])
        for image, masks in enumerate(sampled):
            targets[image, :len(masks)] = masks
        targets = targets[img_inds, gt_inds[img_inds, prior_inds].clamp(min=0)]
        return self.loss_mask(self._upsample_for_loss(logits), targets,
                              weight=valid.to(logits.dtype), avg_factor=num_pos)

    def _upsample_for_loss(self, logits: Tensor) -> Tensor:
        """(N, h, w) mask logits of the prototypes' stride -> the loss's
        stride (bilinear)."""
        scale = self.prior_generator.strides[0][0] // self.mask_loss_stride
        return F.interpolate(logits[None], scale_factor=scale, mode='bilinear',
                             align_corners=False)[0]

    # ---- inference ------------------------------------------------------
    def predict_by_feat(self,
                        cls_scores: List[Tensor],
                        bbox_preds: List[Tensor],
                        kernel_preds: List[Tensor],
                        mask_feat: Tensor,
                        score_factors: Optional[List[Tensor]] = None,
                        batch_img_metas: Optional[List[dict]] = None,
                        cfg: Optional[dict] = None,
                        rescale: bool = False,
                        with_nms: bool = True) -> List[InstanceData]:
        """Detections with masks per image: the dense-head base's boxes,
        scores and labels (after NMS and ``max_per_img``), and ``masks``
        (N, H, W) bool, ``sigmoid(logit) > test_cfg.mask_thr_binary``, of the
        original image with ``rescale`` (else of the padded input).
        """
        name = type(self).__name__
        if not with_nms:
            raise ValueError(f'{name}.predict_by_feat needs with_nms=True (masks are '
                             'computed for the detections NMS keeps)')
        cfg = self.test_cfg if cfg is None else cfg
        if cfg is None or 'mask_thr_binary' not in cfg:
            raise KeyError(f'{name}: test_cfg needs mask_thr_binary (e.g. 0.5)')
        featmap_sizes = [score.shape[-2:] for score in cls_scores]
        batch = cls_scores[0].shape[0]
        # Each point's x, y and strides as (B, 4, H, W) maps, kept with its detections.
        prior_maps = [
            priors.reshape(h, w, 4).permute(2, 0, 1)[None].expand(batch, -1, -1, -1)
            for priors, (h, w) in zip(self.prior_generator.grid_priors(
                featmap_sizes, dtype=cls_scores[0].dtype, device=cls_scores[0].device,
                with_stride=True), featmap_sizes)]
        results_list = super().predict_by_feat(
            cls_scores, bbox_preds, score_factors, batch_img_metas=batch_img_metas, cfg=cfg,
            rescale=rescale, with_nms=True,
            mlvl_extras=dict(kernels=[k.detach() for k in kernel_preds],
                             strided_priors=prior_maps))
        for results, feat, img_meta in zip(results_list, mask_feat, batch_img_metas):
            results.masks = self._predict_masks(feat, results.pop('kernels'),
                                                results.pop('strided_priors'), img_meta, cfg,
                                                rescale)
        return results_list

    def _predict_masks(self, mask_feat: Tensor, kernels: Tensor, priors: Tensor,
                       img_meta: dict, cfg: dict, rescale: bool) -> Tensor:
        """(N, H, W) bool masks of one image's N detections, computed in
        chunks of instances that keep the float logits under ``MASK_CHUNK_BYTES``.

        The logits are upsampled by the first stride to the padded input
        (bilinear); with ``rescale`` resized by ``1 / scale_factor`` (rounded
        up; the height by the width's factor, as MMDetection) and cropped to
        ``ori_shape``.
        """
        stride = self.prior_generator.strides[0][0]
        feat_h, feat_w = mask_feat.shape[-2:]
        num = len(kernels)
        if rescale:
            inverse = [1 / s for s in img_meta['scale_factor']]
            out_h, out_w = img_meta['ori_shape'][:2]
            resized = (math.ceil(feat_h * stride * inverse[0]),
                       math.ceil(feat_w * stride * inverse[1]))
        else:
            out_h, out_w = feat_h * stride, feat_w * stride
            resized = (out_h, out_w)
        if num == 0:
            shape = img_meta['ori_shape'][:2] if rescale else img_meta['img_shape'][:2]
            return torch.zeros((0, ) + tuple(shape), dtype=torch.bool, device=mask_feat.device)
        bytes_per_mask = 4 * (feat_h * stride * feat_w * stride + resized[0] * resized[1])
        chunk = max(1, MASK_CHUNK_BYTES // bytes_per_mask)
        # Zeros where the resized logits fall short of the original image (with
        # unequal scale factors), so that masks always have its shape.
        masks = torch.zeros((num, out_h, out_w), dtype=torch.bool, device=mask_feat.device)
        for start in range(0, num, chunk):
            part = slice(start, start + chunk)
            logits = self.mask_logits(mask_feat[None], kernels[part], priors[part])
            logits = F.interpolate(logits[None], scale_factor=stride, mode='bilinear')
            if rescale:
                logits = F.interpolate(logits, size=list(resized), mode='bilinear',
                                       align_corners=False)[..., :out_h, :out_w]
            height, width = logits.shape[-2:]
            masks[part, :height, :width] = logits[0].sigmoid() > cfg['mask_thr_binary']
        return masks


@MODELS.register_module()
class RTMDetInsSepBNHead(RTMDetInsHead):
    """RTMDet-Ins's head with separate BN and predictors per level; with
    ``share_conv`` the tower convs are shared by the levels.

    As in MMDetection, the box branch has no tower of its own: ``reg_convs``
    holds the class towers themselves (its state_dict keys repeat theirs), and
    the distances are ``relu(rtm_reg(features)) * stride``. In training the
    class tower runs a second time for the box branch, as MMDetection runs it,
    so that BatchNorm's running statistics take the same two updates per step.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        share_conv (bool): Share the tower convs between levels.
        with_objectness (bool): An objectness branch per level.
        norm_cfg (dict): Tower norm config.
        act_cfg (dict): Tower activation.
        pred_kernel_size (int): Kernel of the predictor convs.
        **kwargs: :class:`RTMDetInsHead`'s arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 share_conv: bool = True,
                 with_objectness: bool = False,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 act_cfg: dict = dict(type='SiLU', inplace=True),
                 pred_kernel_size: int = 1,
                 **kwargs) -> None:
        self.share_conv = share_conv
        super().__init__(num_classes, in_channels, norm_cfg=norm_cfg, act_cfg=act_cfg,
                         pred_kernel_size=pred_kernel_size, with_objectness=with_objectness,
                         **kwargs)

    def _init_layers(self) -> None:
        levels = range(len(self.prior_generator.strides))
        self.cls_convs = nn.ModuleList(self._tower() for _ in levels)
        self.reg_convs = nn.ModuleList(self.cls_convs)
        self.kernel_convs = nn.ModuleList(self._tower() for _ in levels)
        predictors = [self._predictors() for _ in levels]
        self.rtm_cls = nn.ModuleList(cls for cls, _, _ in predictors)
        self.rtm_reg = nn.ModuleList(reg for _, reg, _ in predictors)
        self.rtm_kernel = nn.ModuleList(self._kernel_predictor() for _ in levels)
        if self.with_objectness:
            self.rtm_obj = nn.ModuleList(obj for _, _, obj in predictors)
        if self.share_conv:
            for level in levels[1:]:
                for i in range(self.stacked_convs):
                    self.cls_convs[level][i].conv = self.cls_convs[0][i].conv
        self.mask_head = self._mask_feat_module()

    def _predictor_layers(self) -> List[Tuple[nn.Module, nn.Module, Optional[nn.Module]]]:
        objectness = self.rtm_obj if self.with_objectness else [None] * len(self.rtm_cls)
        return list(zip(self.rtm_cls, self.rtm_reg, objectness))

    def init_weights(self) -> None:
        """RTMDetHead's init, with the distance predictors' biases at 1 (as MMDetection)."""
        super().init_weights()
        for rtm_reg in self.rtm_reg:
            nn.init.constant_(rtm_reg.bias, 1)

    def _level_forward(self, level: int, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        stride = self.prior_generator.strides[level][0]
        cls_feat = self._run(self.cls_convs[level], x)
        kernel_pred = self.rtm_kernel[level](self._run(self.kernel_convs[level], x))
        # The same tower on the same input: only training needs the second run.
        reg_feat = self._run(self.reg_convs[level], x) if self.training else cls_feat
        cls_score = self._classify(self.rtm_cls[level](cls_feat), reg_feat,
                                   self.rtm_obj[level] if self.with_objectness else None)
        return cls_score, F.relu(self.rtm_reg[level](reg_feat)) * stride, kernel_pred
