"""HRFPN: HRNet's branches upsampled, concatenated and pooled into a feature pyramid."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from detlab.registry import MODELS
from detlab.structures.errors import AssertionTypeError, AssertionValueError

POOLING_TYPES = {'MAX': F.max_pool2d, 'AVG': F.avg_pool2d}


@MODELS.register_module()
class HRFPN(BaseModule):
    """High Resolution Feature Pyramid (`arXiv:1904.04514 <https://arxiv.org/abs/1904.04514>`_).

    Input ``i`` is bilinearly upsampled by ``2**i`` to the first input's size,
    all are concatenated and reduced by a 1x1 conv (``reduction_conv``) to
    ``out_channels``; level ``i`` of the pyramid pools that map by ``2**i``
    and applies the 3x3 conv ``fpn_convs[i]``.

    Args:
        in_channels (list[int]): Channels of each HRNet branch.
        out_channels (int): Channels of every output level.
        num_outs (int): Pyramid levels. Defaults to 5.
        pooling_type (str): 'AVG' or 'MAX'. Defaults to 'AVG'.
        conv_cfg (dict, optional): mmcv conv config of the convs.
        norm_cfg (dict, optional): Accepted for MMDetection's configs and, as
            there, not used: the convs have no norm.
        with_cp (bool): Activation checkpointing of the convs.
        stride (int): Stride of the 3x3 convs. Defaults to 1.
        init_cfg (dict): Defaults to Caffe2 Xavier on the convs.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 num_outs: int = 5,
                 pooling_type: str = 'AVG',
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 with_cp: bool = False,
                 stride: int = 1,
                 init_cfg: Optional[dict] = dict(type='Caffe2Xavier', layer='Conv2d')) -> None:
        super().__init__(init_cfg)
        if not isinstance(in_channels, list):
            raise AssertionTypeError(f'HRFPN: in_channels must be a list of ints, got '
                                     f'{in_channels!r}')
        if pooling_type not in POOLING_TYPES:
            # MMDetection falls back to average pooling for any other string.
            raise AssertionValueError(f'HRFPN: pooling_type must be one of '
                                      f'{sorted(POOLING_TYPES)}, got {pooling_type!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.with_cp = with_cp
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.reduction_conv = ConvModule(sum(in_channels), out_channels, kernel_size=1,
                                         conv_cfg=conv_cfg, act_cfg=None)
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, kernel_size=3, padding=1, stride=stride,
                       conv_cfg=conv_cfg, act_cfg=None) for _ in range(num_outs))
        self.pooling = POOLING_TYPES[pooling_type]

    def _run(self, layer: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and x.requires_grad:
            return checkpoint(layer, x, use_reentrant=False)
        return layer(x)

    def forward(self, inputs: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """Args: inputs: (B, in_channels[i], H / 2**i, W / 2**i) per branch.

        Returns:
            tuple[Tensor]: ``num_outs`` maps (B, out_channels, H / 2**l, W / 2**l)
            (divided again by ``stride``).
        """
        if len(inputs) != self.num_ins:
            raise AssertionValueError(f'HRFPN: got {len(inputs)} inputs, built for '
                                      f'{self.num_ins} (in_channels={self.in_channels})')
        upsampled = [inputs[0]] + [
            F.interpolate(inputs[i], scale_factor=2**i, mode='bilinear')
            for i in range(1, self.num_ins)
        ]
        out = self._run(self.reduction_conv, torch.cat(upsampled, dim=1))
        levels = [out] + [
            self.pooling(out, kernel_size=2**i, stride=2**i) for i in range(1, self.num_outs)
        ]
        return tuple(self._run(conv, level) for conv, level in zip(self.fpn_convs, levels))
