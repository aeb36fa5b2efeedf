"""MobileNetV2's inverted residual block, with MMDetection's module names."""
from typing import Optional

import torch.utils.checkpoint as checkpoint
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks import DropPath
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.structures.errors import AssertionValueError


class InvertedResidual(BaseModule):
    """1x1 expand -> depthwise kxk -> linear 1x1 projection, plus ``x`` when shapes allow.

    Keys follow MMDetection: ``expand_conv`` (absent without expansion),
    ``depthwise_conv`` and ``linear_conv`` (no activation), each a ConvModule
    (``.conv``, ``.bn``). The shortcut is added when ``stride == 1`` and
    ``in_channels == out_channels``.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels.
        mid_channels (int): Channels of the depthwise conv; equal to
            ``in_channels`` when ``with_expand_conv`` is False.
        kernel_size (int): Depthwise kernel size. Defaults to 3.
        stride (int): 1 or 2, on the depthwise conv. Defaults to 1.
        se_cfg (dict, optional): Must be None (MMDetection's SELayer is not in
            detlab).
        with_expand_conv (bool): Build the 1x1 expansion. Defaults to True.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs.
        drop_path_rate (float): Stochastic depth on the residual branch.
            Defaults to 0.
        with_cp (bool): Activation checkpointing. Defaults to False.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 mid_channels: int,
                 kernel_size: int = 3,
                 stride: int = 1,
                 se_cfg: Optional[dict] = None,
                 with_expand_conv: bool = True,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU'),
                 drop_path_rate: float = 0.,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if stride not in (1, 2):
            raise AssertionValueError(f'InvertedResidual: stride must be 1 or 2, got {stride}')
        if se_cfg is not None:
            raise AssertionValueError(f'InvertedResidual: se_cfg={se_cfg!r} is not available '
                                      "(detlab has no SELayer); remove 'se_cfg'")
        if not with_expand_conv and mid_channels != in_channels:
            raise AssertionValueError(f'InvertedResidual: without expand conv, mid_channels '
                                      f'({mid_channels}) must equal in_channels ({in_channels})')
        self.with_res_shortcut = stride == 1 and in_channels == out_channels
        self.with_cp = with_cp
        self.with_se = False
        self.with_expand_conv = with_expand_conv
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        if with_expand_conv:
            self.expand_conv = ConvModule(in_channels, mid_channels, 1, act_cfg=act_cfg, **cfg)
        self.depthwise_conv = ConvModule(mid_channels, mid_channels, kernel_size, stride=stride,
                                         padding=kernel_size // 2, groups=mid_channels,
                                         act_cfg=act_cfg, **cfg)
        self.linear_conv = ConvModule(mid_channels, out_channels, 1, act_cfg=None, **cfg)

    def _inner_forward(self, x: Tensor) -> Tensor:
        out = self.expand_conv(x) if self.with_expand_conv else x
        out = self.linear_conv(self.depthwise_conv(out))
        return x + self.drop_path(out) if self.with_res_shortcut else out

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H / stride, W / stride)."""
        if self.with_cp and x.requires_grad:
            return checkpoint.checkpoint(self._inner_forward, x, use_reentrant=False)
        return self._inner_forward(x)
