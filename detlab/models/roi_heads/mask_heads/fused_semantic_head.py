"""FusedSemanticHead: HTC's semantic segmentation branch over the FPN levels."""
import warnings
from typing import Optional, Sequence, Tuple

import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS


@MODELS.register_module()
class FusedSemanticHead(BaseModule):
    """Fuse the pyramid levels at one level's resolution and segment the image.

    Every level goes through its own 1x1 ConvModule (``lateral_convs``);
    the others are resized (bilinear, ``align_corners=True``) to level
    ``fusion_level``'s size and summed onto it. ``num_convs`` 3x3
    ConvModules follow; ``conv_logits`` (1x1) gives the (B, num_classes,
    h, w) segmentation logits and ``conv_embedding`` (1x1 ConvModule) the
    semantic features that HTC's RoI head pools and adds to its RoI
    features. State_dict keys as MMDetection's.

    Args:
        num_ins (int): Number of input levels.
        fusion_level (int): Level whose resolution the features are fused at
            (1, stride 8, in HTC).
        seg_scale_factor (float): Scale from the (padded) gt map to the
            logits (1/8 for stride 8); the gt map is resized with 'nearest'.
        num_convs (int): 3x3 convolutions after fusing.
        in_channels (int): Channels of every level.
        conv_out_channels (int): Channels of the convolutions.
        num_classes (int): Segmentation classes (183 for COCO-Stuff's
            things and stuff).
        conv_cfg, norm_cfg (dict, optional): Of the ConvModules.
        ignore_label (int, optional): Deprecated form of
            ``loss_seg.ignore_index``; overrides it when given.
        loss_weight (float, optional): Deprecated form of
            ``loss_seg.loss_weight``; overrides it when given.
        loss_seg (dict): ``CrossEntropyLoss`` over the pixels; label 255 is
            ignored by default.
        init_cfg (dict): mmengine initialisation (Kaiming on ``conv_logits``).
    """

    def __init__(self,
                 num_ins: int,
                 fusion_level: int,
                 seg_scale_factor: float = 1 / 8,
                 num_convs: int = 4,
                 in_channels: int = 256,
                 conv_out_channels: int = 256,
                 num_classes: int = 183,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 ignore_label: Optional[int] = None,
                 loss_weight: Optional[float] = None,
                 loss_seg: dict = dict(type='CrossEntropyLoss', ignore_index=255,
                                       loss_weight=0.2),
                 init_cfg: Optional[dict] = dict(type='Kaiming',
                                                 override=dict(name='conv_logits'))) -> None:
        super().__init__(init_cfg=init_cfg)
        if not 0 <= fusion_level < num_ins:
            raise ValueError(f'FusedSemanticHead: fusion_level={fusion_level} must index one '
                             f'of the num_ins={num_ins} input levels.')
        self.num_ins = num_ins
        self.fusion_level = fusion_level
        self.seg_scale_factor = seg_scale_factor
        self.num_convs = num_convs
        self.in_channels = in_channels
        self.conv_out_channels = conv_out_channels
        self.num_classes = num_classes
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg

        self.lateral_convs = nn.ModuleList(
            ConvModule(in_channels, in_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg,
                       inplace=False) for _ in range(num_ins))
        self.convs = nn.ModuleList(
            ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels, 3,
                       padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            for i in range(num_convs))
        self.conv_embedding = ConvModule(conv_out_channels, conv_out_channels, 1,
                                         conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        self.conv_logits = nn.Conv2d(conv_out_channels, num_classes, 1)
        loss_seg = dict(loss_seg)
        # MMDetection's older keys: a truthy value overrides the loss config's.
        if ignore_label:
            loss_seg['ignore_index'] = ignore_label
        if loss_weight:
            loss_seg['loss_weight'] = loss_weight
        if ignore_label or loss_weight:
            warnings.warn('FusedSemanticHead: ignore_label and loss_weight are deprecated; '
                          'set ignore_index and loss_weight in loss_seg instead.')
        self.criterion = MODELS.build(loss_seg)

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Segmentation logits (B, num_classes, h, w) and semantic features
        (B, conv_out_channels, h, w), at level ``fusion_level``'s size."""
        if len(feats) != self.num_ins:
            raise ValueError(f'FusedSemanticHead got {len(feats)} feature levels, built for '
                             f'num_ins={self.num_ins}')
        x = self.lateral_convs[self.fusion_level](feats[self.fusion_level])
        fused_size = tuple(x.shape[-2:])
        for i, feat in enumerate(feats):
            if i != self.fusion_level:
                feat = F.interpolate(feat, size=fused_size, mode='bilinear', align_corners=True)
                x = x + self.lateral_convs[i](feat)
        for conv in self.convs:
            x = conv(x)
        return self.conv_logits(x), self.conv_embedding(x)

    def loss(self, mask_preds: Tensor, labels: Tensor) -> Tensor:
        """``loss_seg`` of (B, num_classes, h, w) logits against (B, 1, H, W)
        gt class maps, which are resized by ``seg_scale_factor`` ('nearest')."""
        labels = F.interpolate(labels.float(), scale_factor=self.seg_scale_factor,
                               mode='nearest')
        return self.criterion(mask_preds, labels.squeeze(1).long())
