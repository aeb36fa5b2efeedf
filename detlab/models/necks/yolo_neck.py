"""YOLOv3's neck: detection blocks from the coarsest map down, with upsampled lateral inputs."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..backbones.darknet import DEFAULT_ACT, DEFAULT_NORM


class DetectionBlock(BaseModule):
    """Five ConvModules alternating 1x1 to ``out_channels`` and 3x3 to twice that:
    ``conv1`` .. ``conv5`` (1x1, 3x3, 1x1, 3x3, 1x1), MMDetection's keys.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (the 3x3 convs have twice as many).
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = DEFAULT_NORM,
                 act_cfg: dict = DEFAULT_ACT,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        wide = out_channels * 2
        self.conv1 = ConvModule(in_channels, out_channels, 1, **cfg)
        self.conv2 = ConvModule(out_channels, wide, 3, padding=1, **cfg)
        self.conv3 = ConvModule(wide, out_channels, 1, **cfg)
        self.conv4 = ConvModule(out_channels, wide, 3, padding=1, **cfg)
        self.conv5 = ConvModule(wide, out_channels, 1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H, W)."""
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            x = conv(x)
        return x


@MODELS.register_module()
class YOLOV3Neck(BaseModule):
    """YOLOv3's neck, a simplified FPN over Darknet's maps.

    Takes the maps fine to coarse and processes them coarse to fine:
    ``detect1`` runs on the coarsest map; for each finer map i, ``conv{i}``
    (1x1) maps the previous output to ``out_channels[i]``, it is upsampled 2x
    (nearest), concatenated with the map, and ``detect{i+1}`` runs on that.

    Args:
        num_scales (int): Number of maps.
        in_channels (list[int]): Channels per map, coarsest first (e.g.
            [1024, 512, 256]).
        out_channels (list[int]): Output channels per map, coarsest first.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs.
        init_cfg (dict, optional): Initialization config.

    Returns of ``forward``: one map per scale, coarsest first.
    """

    def __init__(self,
                 num_scales: int,
                 in_channels: List[int],
                 out_channels: List[int],
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = DEFAULT_NORM,
                 act_cfg: dict = DEFAULT_ACT,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not num_scales == len(in_channels) == len(out_channels):
            raise AssertionValueError(f'YOLOV3Neck: num_scales={num_scales} needs as many '
                                      f'in_channels ({list(in_channels)}) and out_channels '
                                      f'({list(out_channels)})')
        self.num_scales = num_scales
        self.in_channels = in_channels
        self.out_channels = out_channels
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.detect1 = DetectionBlock(in_channels[0], out_channels[0], **cfg)
        for i in range(1, num_scales):
            self.add_module(f'conv{i}', ConvModule(out_channels[i - 1], out_channels[i], 1, **cfg))
            self.add_module(f'detect{i + 1}',
                            DetectionBlock(in_channels[i] + out_channels[i], out_channels[i],
                                           **cfg))

    def forward(self, feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Maps fine to coarse (as Darknet returns them) -> outputs coarse to fine."""
        if len(feats) != self.num_scales:
            raise AssertionValueError(f'YOLOV3Neck: got {len(feats)} maps, expected '
                                      f'num_scales={self.num_scales}')
        out = self.detect1(feats[-1])
        outs = [out]
        for i, x in enumerate(reversed(feats[:-1])):
            lateral = F.interpolate(getattr(self, f'conv{i + 1}')(out), scale_factor=2)
            out = getattr(self, f'detect{i + 2}')(torch.cat((lateral, x), 1))
            outs.append(out)
        return tuple(outs)
