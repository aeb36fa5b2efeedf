"""SSD's neck: L2-normalize the first map, then add extra downsampling levels."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError


class L2Norm(nn.Module):
    """``weight * x / ||x||_2`` over channels, per pixel (computed in float32).

    Args:
        n_dims (int): Channels.
        scale (float): Initial value of ``weight`` (set by SSDNeck's init).
            Defaults to 20.
        eps (float): Added to the norm. Defaults to 1e-10.
    """

    def __init__(self, n_dims: int, scale: float = 20., eps: float = 1e-10) -> None:
        super().__init__()
        self.n_dims = n_dims
        self.weight = nn.Parameter(torch.full((n_dims, ), float(scale)))
        self.eps = eps
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        x_float = x.float()
        norm = x_float.pow(2).sum(1, keepdim=True).sqrt() + self.eps
        return (self.weight[None, :, None, None].float() * x_float / norm).type_as(x)


@MODELS.register_module()
class SSDNeck(BaseModule):
    """The input maps (the first L2-normalized) and extra levels built from the last one.

    Extra level i is a 1x1 ConvModule to ``out_channels[k + i] // 2``
    channels then a 3x3 (``last_kernel_size`` for the last level) ConvModule
    with ``level_strides[i]`` and ``level_paddings[i]``; keys are
    MMDetection's (``l2_norm.weight``, ``extra_layers.{i}.{0,1}.conv``).

    Args:
        in_channels (Sequence[int]): Channels of the input maps.
        out_channels (Sequence[int]): Channels of every output map; starts
            with ``in_channels``.
        level_strides, level_paddings (Sequence[int]): One per extra level.
        l2_norm_scale (float, optional): Initial L2 norm weight; None or 0
            leaves the first map as it is. Defaults to 20.
        last_kernel_size (int): Kernel of the last extra level's 3x3 conv.
        use_depthwise (bool): Depthwise-separable second convs (SSDLite).
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs.
        init_cfg (dict | list[dict]): Defaults to xavier-uniform convs and
            constant BN; the L2 norm starts at ``l2_norm_scale``.
    """

    def __init__(self,
                 in_channels: Sequence[int],
                 out_channels: Sequence[int],
                 level_strides: Sequence[int],
                 level_paddings: Sequence[int],
                 l2_norm_scale: Optional[float] = 20.,
                 last_kernel_size: int = 3,
                 use_depthwise: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 act_cfg: dict = dict(type='ReLU'),
                 init_cfg: Union[dict, List[dict]] = (
                     dict(type='Xavier', distribution='uniform', layer='Conv2d'),
                     dict(type='Constant', val=1, layer='BatchNorm2d'),
                 )) -> None:
        init_cfg = [dict(cfg) for cfg in init_cfg] if isinstance(init_cfg, (list, tuple)) \
            else [init_cfg]
        num_in, num_extra = len(in_channels), len(out_channels) - len(in_channels)
        if num_extra < 1 or num_extra != len(level_strides) or \
                len(level_strides) != len(level_paddings) or \
                list(in_channels) != list(out_channels)[:num_in]:
            raise AssertionValueError(
                f'SSDNeck: out_channels {list(out_channels)} must start with in_channels '
                f'{list(in_channels)} and add one level per level_strides '
                f'{list(level_strides)} and level_paddings {list(level_paddings)}')
        if l2_norm_scale:
            init_cfg.append(dict(type='Constant', val=l2_norm_scale,
                                 override=dict(name='l2_norm')))
        super().__init__(init_cfg)
        if l2_norm_scale:
            self.l2_norm = L2Norm(in_channels[0], l2_norm_scale)
        second_conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.extra_layers = nn.ModuleList()
        for i, (channels, stride, padding) in enumerate(
                zip(out_channels[num_in:], level_strides, level_paddings)):
            kernel_size = last_kernel_size if i == num_extra - 1 else 3
            self.extra_layers.append(nn.Sequential(
                ConvModule(out_channels[num_in - 1 + i], channels // 2, 1, **cfg),
                second_conv(channels // 2, channels, kernel_size, stride=stride,
                            padding=padding, **cfg)))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """The input maps, then one map per extra level, each from the previous one."""
        outs = list(inputs)
        if hasattr(self, 'l2_norm'):
            outs[0] = self.l2_norm(outs[0])
        feat = outs[-1]
        for layer in self.extra_layers:
            feat = layer(feat)
            outs.append(feat)
        return tuple(outs)
