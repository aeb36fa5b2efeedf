"""ChannelMapper: brings every backbone level to one channel count (DETR family)."""
from typing import List, Optional, Tuple, Union

import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor

from detlab.registry import MODELS


@MODELS.register_module()
class ChannelMapper(BaseModule):
    """One conv per input level to ``out_channels``, plus stride-2 extra levels.

    Args:
        in_channels (list[int]): Channels of each input level.
        out_channels (int): Channels of every output level.
        kernel_size (int): Kernel of the per-level convs. Defaults to 3.
        conv_cfg, norm_cfg, act_cfg (dict, optional): ``ConvModule`` settings.
        bias (bool | str): ``ConvModule``'s bias. Defaults to ``'auto'``.
        num_outs (int, optional): Output levels; more than the inputs adds 3x3
            stride-2 convs, the first on the last input, the rest chained.
        init_cfg (dict): Defaults to uniform Xavier on the convs.
    """

    def __init__(self,
                 in_channels: List[int],
                 out_channels: int,
                 kernel_size: int = 3,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: Optional[dict] = dict(type='ReLU'),
                 bias: Union[bool, str] = 'auto',
                 num_outs: Optional[int] = None,
                 init_cfg: Optional[dict] = dict(type='Xavier', layer='Conv2d',
                                                 distribution='uniform')) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, (list, tuple)):
            raise TypeError(f'ChannelMapper: in_channels must be a list of ints, got '
                            f'{in_channels!r}')
        num_outs = len(in_channels) if num_outs is None else num_outs
        if num_outs < len(in_channels):
            raise ValueError(f'ChannelMapper: num_outs ({num_outs}) must be at least the number '
                             f'of input levels ({len(in_channels)})')
        conv_args = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg, bias=bias)
        self.convs = nn.ModuleList(
            ConvModule(c, out_channels, kernel_size, padding=(kernel_size - 1) // 2, **conv_args)
            for c in in_channels)
        self.extra_convs = None
        if num_outs > len(in_channels):
            self.extra_convs = nn.ModuleList(
                ConvModule(in_channels[-1] if i == len(in_channels) else out_channels,
                           out_channels, 3, stride=2, padding=1, **conv_args)
                for i in range(len(in_channels), num_outs))

    def forward(self, inputs: Tuple[Tensor]) -> Tuple[Tensor]:
        if len(inputs) != len(self.convs):
            raise ValueError(f'ChannelMapper: expected {len(self.convs)} input levels, got '
                             f'{len(inputs)}')
        outs = [conv(x) for conv, x in zip(self.convs, inputs)]
        if self.extra_convs:
            outs.append(self.extra_convs[0](inputs[-1]))
            for conv in self.extra_convs[1:]:
                outs.append(conv(outs[-1]))
        return tuple(outs)
