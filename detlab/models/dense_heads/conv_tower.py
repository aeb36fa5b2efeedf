"""The stack of 3x3 convs that dense heads put in front of their predictors."""
from typing import Optional, Union

from mmcv.cnn import ConvModule
from torch import nn


def conv_tower(in_channels: int, feat_channels: int, num_convs: int,
               conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
               bias: Union[bool, str] = 'auto') -> nn.ModuleList:
    """``num_convs`` ConvModules (3x3 conv, optional norm, ReLU), keys
    ``{i}.conv`` and ``{i}.gn``/``{i}.bn`` as in MMDetection's heads.

    Args:
        in_channels (int): Channels into the first conv.
        feat_channels (int): Channels out of every conv.
        num_convs (int): Number of convs (0 gives an empty tower).
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict, optional): Norm layer config, e.g. GN.
        bias (bool | str): Conv bias; ``'auto'``: only without a norm.
    """
    return nn.ModuleList(
        ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, stride=1,
                   padding=1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, bias=bias)
        for i in range(num_convs))
