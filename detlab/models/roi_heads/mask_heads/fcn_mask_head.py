"""FCNMaskHead: Mask R-CNN's per-RoI mask predictor."""
from typing import List, Optional, Sequence

import torch
from mmcv.cnn import ConvModule, build_conv_layer, build_upsample_layer
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from detlab.models.task_modules.samplers import SamplingResult
from detlab.registry import MODELS
from detlab.structures.mask.mask_target import mask_target
from .paste_masks import paste_masks_in_image

UPSAMPLE_METHODS = (None, 'deconv', 'nearest', 'bilinear')


@MODELS.register_module()
class FCNMaskHead(BaseModule):
    """Convolutions, an upsampling and a 1x1 classifier giving a mask per class.

    A (K, in_channels, 14, 14) RoI feature goes through ``num_convs`` 3x3
    ConvModules, is upsampled (a stride-2 transposed conv by default, then a
    ReLU) and ``conv_logits`` gives (K, num_classes, 28, 28) mask logits (one
    channel with ``class_agnostic``). State_dict keys as MMDetection's:
    ``convs.{i}.conv``, ``upsample``, ``conv_logits``.

    Args:
        num_convs (int): 3x3 convolutions before upsampling.
        roi_feat_size (int): Kept for MMDetection's configs; unused.
        in_channels (int): Channels of the RoI features.
        conv_kernel_size (int): Kernel of the convolutions.
        conv_out_channels (int): Channels of the convolutions.
        num_classes (int): Foreground classes.
        class_agnostic (bool): One mask per RoI instead of one per class.
        upsample_cfg (dict): ``type`` None, 'deconv', 'nearest' or
            'bilinear' and ``scale_factor``.
        conv_cfg, norm_cfg (dict, optional): Of the ConvModules.
        predictor_cfg (dict): Config of ``conv_logits``.
        loss_mask (dict): ``CrossEntropyLoss`` with ``use_mask=True``.
        init_cfg: Must be None: the upsampling and the logits are
            initialised by :meth:`init_weights` (Kaiming normal, fan-out).
    """

    def __init__(self,
                 num_convs: int = 4,
                 roi_feat_size: int = 14,
                 in_channels: int = 256,
                 conv_kernel_size: int = 3,
                 conv_out_channels: int = 256,
                 num_classes: int = 80,
                 class_agnostic: bool = False,
                 upsample_cfg: dict = dict(type='deconv', scale_factor=2),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 predictor_cfg: dict = dict(type='Conv'),
                 loss_mask: dict = dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0),
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is not None:
            raise ValueError(f'{type(self).__name__}: init_cfg must be None (its layers are '
                             f'initialised by init_weights), got {init_cfg}')
        super().__init__(init_cfg=None)
        upsample_cfg = dict(upsample_cfg)
        self.upsample_method = upsample_cfg.get('type')
        if self.upsample_method not in UPSAMPLE_METHODS:
            raise ValueError(f'{type(self).__name__}: upsample_cfg.type='
                             f'{self.upsample_method!r} is not supported; use one of '
                             f'{UPSAMPLE_METHODS} (carafe needs mmcv\'s compiled ops)')
        self.scale_factor = upsample_cfg.pop('scale_factor', None)
        self.upsample_cfg = upsample_cfg
        self.num_convs = num_convs
        self.roi_feat_size = _pair(roi_feat_size)
        self.in_channels = in_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_out_channels = conv_out_channels
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.predictor_cfg = predictor_cfg
        self.loss_mask = MODELS.build(loss_mask)

        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels,
                       conv_kernel_size, padding=(conv_kernel_size - 1) // 2,
                       conv_cfg=conv_cfg, norm_cfg=norm_cfg) for i in range(num_convs))
        upsample_in = conv_out_channels if num_convs > 0 else in_channels
        self.upsample = self._build_upsample(upsample_in)
        logits_in = conv_out_channels if self.upsample_method == 'deconv' else upsample_in
        self.conv_logits = build_conv_layer(predictor_cfg, logits_in,
                                            1 if class_agnostic else num_classes, 1)
        self.relu = nn.ReLU(inplace=True)

    def _build_upsample(self, in_channels: int) -> Optional[nn.Module]:
        if self.upsample_method is None:
            return None
        if self.upsample_method == 'deconv':
            return build_upsample_layer(dict(self.upsample_cfg, in_channels=in_channels,
                                             out_channels=self.conv_out_channels,
                                             kernel_size=self.scale_factor,
                                             stride=self.scale_factor))
        align_corners = None if self.upsample_method == 'nearest' else False
        return build_upsample_layer(dict(self.upsample_cfg, scale_factor=self.scale_factor,
                                         mode=self.upsample_method, align_corners=align_corners))

    def init_weights(self) -> None:
        super().init_weights()
        for module in (self.upsample, self.conv_logits):
            if getattr(module, 'weight', None) is not None and \
                    getattr(module, 'bias', None) is not None:
                nn.init.kaiming_normal_(module.weight, mode='fan_out', nonlinearity='relu')
                nn.init.constant_(module.bias, 0)

    def forward(self, x: Tensor) -> Tensor:
        """(K, in_channels, h, w) RoI features -> (K, num_classes or 1, h', w') logits."""
        for conv in self.convs:
            x = conv(x)
        return self.logits_from_conv_feats(x)

    def logits_from_conv_feats(self, x: Tensor) -> Tensor:
        """Upsample the output of ``convs`` and classify it: (K, C, h', w') logits."""
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == 'deconv':
                x = self.relu(x)
        return self.conv_logits(x)

    # ---- training -------------------------------------------------------
    def get_targets(self, sampling_results: Sequence[SamplingResult],
                    batch_gt_instances: Sequence[InstanceData], rcnn_train_cfg: dict) -> Tensor:
        """(P, mask_h, mask_w) targets of the positive RoIs, images in order."""
        return mask_target([res.pos_priors for res in sampling_results],
                           [res.pos_assigned_gt_inds for res in sampling_results],
                           [gt.masks for gt in batch_gt_instances], rcnn_train_cfg)

    def loss_and_target(self, mask_preds: Tensor, sampling_results: Sequence[SamplingResult],
                        batch_gt_instances: Sequence[InstanceData],
                        rcnn_train_cfg: dict) -> dict:
        """``loss_mask`` (the dict ``{'loss_mask': (1,) tensor}``) and ``mask_targets``.

        Args:
            mask_preds (Tensor): (P, num_classes or 1, h, w) logits of the
                positive RoIs, in the order of ``sampling_results``.
            sampling_results (list[SamplingResult]): One per image.
            batch_gt_instances (list[InstanceData]): With ``masks``.
            rcnn_train_cfg (dict): R-CNN ``train_cfg`` with ``mask_size``.
        """
        mask_targets = self.get_targets(sampling_results, batch_gt_instances, rcnn_train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        if mask_preds.size(0) == 0:
            loss_mask = mask_preds.sum()
        else:
            labels = torch.zeros_like(pos_labels) if self.class_agnostic else pos_labels
            loss_mask = self.loss_mask(mask_preds, mask_targets, labels)
        return dict(loss_mask=dict(loss_mask=loss_mask), mask_targets=mask_targets)

    # ---- inference ------------------------------------------------------
    def predict_by_feat(self, mask_preds: Sequence[Tensor], results_list: List[InstanceData],
                        batch_img_metas: List[dict], rcnn_test_cfg: dict,
                        rescale: bool = False,
                        activate_map: bool = False) -> List[InstanceData]:
        """Add ``masks`` to each image's detections.

        Args:
            mask_preds (list[Tensor]): (n_i, num_classes or 1, h, w) logits
                per image (probabilities with ``activate_map``).
            results_list (list[InstanceData]): ``bboxes`` (n_i, 4) in the
                network input's pixels, ``labels`` (n_i,).
            batch_img_metas (list[dict]): ``ori_shape``, ``scale_factor``.
            rcnn_test_cfg (dict): ``mask_thr_binary``.
            rescale (bool): Boxes and masks in the original image's pixels;
                otherwise in the resized image's.

        Returns:
            list[InstanceData]: New results with ``bboxes`` (rescaled with
            ``rescale``), ``scores``, ``labels`` and ``masks`` (n_i, H, W)
            bool (uint8 ``prob * 255`` for a negative ``mask_thr_binary``).
        """
        if not len(mask_preds) == len(results_list) == len(batch_img_metas):
            raise ValueError('predict_by_feat needs one mask_preds, result and img_meta per '
                             'image')
        if not rcnn_test_cfg or 'mask_thr_binary' not in rcnn_test_cfg:
            raise KeyError('test_cfg.rcnn needs mask_thr_binary (e.g. 0.5) to binarise the '
                           'predicted masks')
        return [self._predict_by_feat_single(preds, results, img_meta, rcnn_test_cfg, rescale,
                                             activate_map)
                for preds, results, img_meta in zip(mask_preds, results_list, batch_img_metas)]

    def _predict_by_feat_single(self, mask_preds: Tensor, results: InstanceData, img_meta: dict,
                                rcnn_test_cfg: dict, rescale: bool,
                                activate_map: bool) -> InstanceData:
        threshold = rcnn_test_cfg['mask_thr_binary']
        results = results.clone()
        bboxes = results.bboxes
        scale_factor = bboxes.new_tensor(img_meta['scale_factor']).repeat(1, 2)
        img_h, img_w = img_meta['ori_shape'][:2]
        if rescale:
            bboxes = bboxes / scale_factor
            results.bboxes = bboxes
        else:
            img_h = int(round(img_h * float(scale_factor[0, 1])))
            img_w = int(round(img_w * float(scale_factor[0, 0])))
        probs = mask_preds if activate_map else mask_preds.sigmoid()
        if not self.class_agnostic and len(bboxes) > 0:
            probs = probs[torch.arange(len(bboxes), device=probs.device), results.labels]
            probs = probs[:, None]
        results.masks = paste_masks_in_image(probs, bboxes, img_h, img_w, threshold)
        return results
