"""SSD's VGG backbone (Liu et al., 2016) with MMDetection 3.3's config and state_dict keys."""
import warnings
from typing import Optional, Sequence, Tuple, Union

from mmcv.cnn import VGG
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from .base_backbone import backbone_init_cfg

#: SSD's replacement of VGG's fc6/fc7: a dilated 3x3 conv and a 1x1 conv.
FC6_DILATION = 6
FC_CHANNELS = 1024
VGG_OUT_CHANNELS = 512


@MODELS.register_module()
class SSDVGG(VGG, BaseModule):
    """mmcv's VGG (``features.{i}``) without its last pool, plus SSD's pool5/fc6/fc7.

    After VGG's conv layers come a 3x3 stride-1 max pool, a 3x3 conv with
    dilation 6 (512 -> 1024) and a 1x1 conv (1024 -> 1024), each conv
    followed by ReLU, appended to ``features`` as MMDetection does, so
    MMDetection's SSD checkpoints load unchanged.

    Args:
        depth (int): VGG depth, 11, 13, 16 or 19.
        with_last_pool (bool): Keep VGG's last max pool. Defaults to False.
        ceil_mode (bool): Ceil mode of VGG's pools. Defaults to True.
        out_indices (Sequence[int]): VGG stages (kept for mmcv's VGG).
        out_feature_indices (Sequence[int]): Indices into ``features`` whose
            outputs ``forward`` returns. Defaults to (22, 34): conv4_3's ReLU
            and fc7's ReLU for depth 16.
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        init_cfg (dict | list[dict], optional): Initialization config; None
            means kaiming convs, constant BN and normal(0.01) linear layers.
        input_size, l2_norm_scale: Deprecated and ignored, as in MMDetection
            (the L2 norm lives in ``SSDNeck``).
    """

    extra_setting = {
        300: (256, 'S', 512, 128, 'S', 256, 128, 256, 128, 256),
        512: (256, 'S', 512, 128, 'S', 256, 128, 'S', 256, 128, 'S', 256, 128),
    }

    def __init__(self,
                 depth: int,
                 with_last_pool: bool = False,
                 ceil_mode: bool = True,
                 out_indices: Sequence[int] = (3, 4),
                 out_feature_indices: Sequence[int] = (22, 34),
                 pretrained: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None,
                 input_size: Optional[int] = None,
                 l2_norm_scale: Optional[float] = None) -> None:
        super().__init__(depth, with_last_pool=with_last_pool, ceil_mode=ceil_mode,
                         out_indices=out_indices)
        extra = [
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(VGG_OUT_CHANNELS, FC_CHANNELS, kernel_size=3, padding=FC6_DILATION,
                      dilation=FC6_DILATION),
            nn.ReLU(inplace=True),
            nn.Conv2d(FC_CHANNELS, FC_CHANNELS, kernel_size=1),
            nn.ReLU(inplace=True),
        ]
        for layer in extra:
            self.features.add_module(str(len(self.features)), layer)
        self.out_feature_indices = tuple(out_feature_indices)
        if init_cfg is None and pretrained is None:
            self.init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer='BatchNorm2d'),
                dict(type='Normal', std=0.01, layer='Linear'),
            ]
        else:
            self.init_cfg = backbone_init_cfg('SSDVGG', init_cfg, pretrained)
        for name, value in (('input_size', input_size), ('l2_norm_scale', l2_norm_scale)):
            if value is not None:
                warnings.warn(f'SSDVGG: {name} is deprecated and ignored (the L2 norm is '
                              "SSDNeck's l2_norm_scale)", DeprecationWarning)

    def init_weights(self, pretrained: Optional[str] = None) -> None:
        """mmengine's init from ``init_cfg`` (not mmcv VGG's own init)."""
        BaseModule.init_weights(self)

    def train(self, mode: bool = True) -> 'SSDVGG':
        """mmcv VGG's train (BN eval, frozen stages), returning the module as torch does."""
        super().train(mode)
        return self

    def forward(self, x: Tensor) -> Union[Tensor, Tuple[Tensor, ...]]:
        """(B, 3, H, W) -> the outputs of ``features[i]`` for i in ``out_feature_indices``
        (one tensor when there is one index)."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_feature_indices:
                outs.append(x)
        return outs[0] if len(outs) == 1 else tuple(outs)
