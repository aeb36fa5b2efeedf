"""The Swin Transformer's layers, with MMDetection 3.3's names and state_dict keys.

:class:`WindowMSA` attends within non-overlapping windows and adds a learnt bias
per relative offset; :class:`ShiftWindowMSA` pads the map to whole windows and,
for every second block, rolls it by half a window so that windows straddle the
previous ones' borders (a mask keeps regions that the roll brings together
apart). :class:`SwinBlockSequence` is one stage of :class:`SwinBlock` s.
"""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import trunc_normal_
from mmengine.utils import to_2tuple
from torch import Tensor, nn

from detlab.structures.errors import AssertionValueError
from .utils import FFN

#: Added to attention logits between tokens that a shifted window brings together
#: from different regions of the map (MMDetection's and the original's value).
SHIFTED_WINDOW_MASK_VALUE = -100.0


class WindowMSA(BaseModule):
    """Multi-head self-attention inside one window, with a relative position bias.

    Args:
        embed_dims (int): Channels of the tokens.
        num_heads (int): Attention heads.
        window_size (tuple[int]): Window height and width.
        qkv_bias (bool): Bias in the q, k, v projection. Defaults to True.
        qk_scale (float, optional): Overrides ``head_dims ** -0.5``.
        attn_drop_rate (float): Dropout on attention weights. Defaults to 0.
        proj_drop_rate (float): Dropout on the output. Defaults to 0.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: Tuple[int, int],
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = qk_scale or (embed_dims // num_heads)**-0.5
        height, width = window_size
        # One learnt bias per head for each of the (2h-1)(2w-1) relative offsets.
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * height - 1) * (2 * width - 1), num_heads))
        self.register_buffer('relative_position_index', relative_position_index(height, width))
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop_rate)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop_rate)
        self.softmax = nn.Softmax(dim=-1)

    def init_weights(self) -> None:
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """Attend within windows.

        Args:
            x (Tensor): (num_windows * B, N, C) tokens, N = window height * width.
            mask (Tensor, optional): (num_windows, N, N) additive mask, 0 or negative.

        Returns:
            Tensor: (num_windows * B, N, C).
        """
        batch, length, channels = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads,
                                  channels // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.scale) @ k.transpose(-2, -1)
        window_area = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(
            window_area, window_area, -1)
        attn = attn + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.view(batch // num_windows, num_windows, self.num_heads, length,
                             length) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, length, length)
        attn = self.attn_drop(self.softmax(attn))
        x = (attn @ v).transpose(1, 2).reshape(batch, length, channels)
        return self.proj_drop(self.proj(x))


def relative_position_index(height: int, width: int) -> Tensor:
    """(h*w, h*w) index into the bias table of the offset between each pair of
    window positions: ``(dy + h - 1) * (2w - 1) + (dx + w - 1)``, row-major positions."""
    rows = torch.arange(0, (2 * width - 1) * height, 2 * width - 1)
    cols = torch.arange(width)
    coords = (rows[:, None] + cols[None, :]).reshape(1, -1)
    return (coords + coords.T).flip(1).contiguous()


def window_partition(x: Tensor, window_size: int) -> Tensor:
    """(B, H, W, C) -> (num_windows * B, window_size, window_size, C)."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size,
               channels)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, window_size, window_size, channels)


def window_reverse(windows: Tensor, height: int, width: int) -> Tensor:
    """(num_windows * B, window_size, window_size, C) -> (B, H, W, C)."""
    window_size = windows.shape[1]
    batch = int(windows.shape[0] / (height * width / window_size / window_size))
    x = windows.view(batch, height // window_size, width // window_size, window_size,
                     window_size, -1)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(batch, height, width, -1)


class ShiftWindowMSA(BaseModule):
    """Window attention on a map padded to whole windows, optionally on windows
    shifted by ``shift_size`` towards the bottom right (a cyclic roll and a mask).

    Args:
        embed_dims (int): Channels of the tokens.
        num_heads (int): Attention heads.
        window_size (int): Window side.
        shift_size (int): Shift, in ``[0, window_size)``; 0 for plain windows.
        dropout_layer (dict): Dropout applied to the output (DropPath).
        Others as :class:`WindowMSA`.
    """

    def __init__(self, embed_dims: int, num_heads: int, window_size: int, shift_size: int = 0,
                 qkv_bias: bool = True, qk_scale: Optional[float] = None,
                 attn_drop_rate: float = 0., proj_drop_rate: float = 0.,
                 dropout_layer: dict = dict(type='DropPath', drop_prob=0.),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if not 0 <= shift_size < window_size:
            raise AssertionValueError(f'ShiftWindowMSA: shift_size={shift_size} must be in '
                                      f'[0, window_size={window_size}).')
        self.window_size = window_size
        self.shift_size = shift_size
        self.w_msa = WindowMSA(embed_dims=embed_dims, num_heads=num_heads,
                               window_size=to_2tuple(window_size), qkv_bias=qkv_bias,
                               qk_scale=qk_scale, attn_drop_rate=attn_drop_rate,
                               proj_drop_rate=proj_drop_rate)
        self.drop = build_dropout(dropout_layer)

    def shifted_window_mask(self, height: int, width: int, device: torch.device) -> Tensor:
        """(num_windows, N, N) mask: 0 within a region, -100 across the regions that the
        cyclic shift brings into one window."""
        region = torch.zeros((1, height, width, 1), device=device)
        window, shift = self.window_size, self.shift_size
        slices = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
        for index, (h, w) in enumerate((h, w) for h in slices for w in slices):
            region[:, h, w, :] = index
        region = window_partition(region, window).view(-1, window * window)
        mask = region.unsqueeze(1) - region.unsqueeze(2)
        return mask.masked_fill(mask != 0, SHIFTED_WINDOW_MASK_VALUE).masked_fill(mask == 0, 0.)

    def forward(self, query: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        """(B, H*W, C) tokens of an H x W map -> (B, H*W, C)."""
        batch, length, channels = query.shape
        height, width = hw_shape
        if length != height * width:
            raise AssertionValueError(f'ShiftWindowMSA: {length} tokens for a {height}x{width} '
                                      'map.')
        window = self.window_size
        query = query.view(batch, height, width, channels)
        pad_r, pad_b = (window - width % window) % window, (window - height % window) % window
        query = F.pad(query, (0, 0, 0, pad_r, 0, pad_b))
        padded_h, padded_w = query.shape[1], query.shape[2]
        if self.shift_size > 0:
            query = torch.roll(query, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            attn_mask = self.shifted_window_mask(padded_h, padded_w, query.device)
        else:
            attn_mask = None
        windows = window_partition(query, window).view(-1, window**2, channels)
        windows = self.w_msa(windows, mask=attn_mask).view(-1, window, window, channels)
        x = window_reverse(windows, padded_h, padded_w)
        if self.shift_size > 0:
            x = torch.roll(x, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        if pad_r > 0 or pad_b:
            x = x[:, :height, :width, :].contiguous()
        return self.drop(x.view(batch, height * width, channels))


class SwinBlock(BaseModule):
    """Pre-norm block: ``x + attn(norm1(x))``, then ``x + ffn(norm2(x))``.

    Args:
        embed_dims (int): Channels. num_heads (int): Attention heads.
        feedforward_channels (int): Hidden channels of the FFN.
        window_size (int): Window side. Defaults to 7.
        shift (bool): Shift windows by ``window_size // 2``. Defaults to False.
        drop_rate, attn_drop_rate, drop_path_rate (float): Dropout rates.
        act_cfg, norm_cfg (dict): FFN activation and the norms (GELU, LN).
        with_cp (bool): Recompute the block in backward to save memory.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 window_size: int = 7, shift: bool = False, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 act_cfg: dict = dict(type='GELU'), norm_cfg: dict = dict(type='LN'),
                 with_cp: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.with_cp = with_cp
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = ShiftWindowMSA(
            embed_dims=embed_dims, num_heads=num_heads, window_size=window_size,
            shift_size=window_size // 2 if shift else 0, qkv_bias=qkv_bias, qk_scale=qk_scale,
            attn_drop_rate=attn_drop_rate, proj_drop_rate=drop_rate,
            dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate))
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = FFN(embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                       num_fcs=2, ffn_drop=drop_rate,
                       dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
                       act_cfg=act_cfg, add_identity=True, init_cfg=None)

    def _inner_forward(self, x: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        x = x + self.attn(self.norm1(x), hw_shape)
        return self.ffn(self.norm2(x), identity=x)

    def forward(self, x: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        if self.with_cp and x.requires_grad:
            return cp.checkpoint(self._inner_forward, x, hw_shape, use_reentrant=False)
        return self._inner_forward(x, hw_shape)


class SwinBlockSequence(BaseModule):
    """One stage: ``depth`` blocks, every second one on shifted windows, then an
    optional downsample (PatchMerging).

    Args:
        depth (int): Blocks. drop_path_rate (float | list[float]): One rate for all
            blocks or one per block. downsample (nn.Module, optional): Applied last.
        Others as :class:`SwinBlock`.
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int, depth: int,
                 window_size: int = 7, qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, drop_rate: float = 0.,
                 attn_drop_rate: float = 0., drop_path_rate: Union[float, List[float]] = 0.,
                 downsample: Optional[nn.Module] = None, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if isinstance(drop_path_rate, list):
            if len(drop_path_rate) != depth:
                raise AssertionValueError(f'SwinBlockSequence: {len(drop_path_rate)} drop path '
                                          f'rates for depth={depth}.')
            drop_path_rates = drop_path_rate
        else:
            drop_path_rates = [drop_path_rate] * depth
        self.blocks = ModuleList(
            SwinBlock(embed_dims=embed_dims, num_heads=num_heads,
                      feedforward_channels=feedforward_channels, window_size=window_size,
                      shift=i % 2 == 1, qkv_bias=qkv_bias, qk_scale=qk_scale,
                      drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                      drop_path_rate=drop_path_rates[i], act_cfg=act_cfg, norm_cfg=norm_cfg,
                      with_cp=with_cp) for i in range(depth))
        self.downsample = downsample

    def forward(self, x: Tensor, hw_shape: Tuple[int, int]):
        """Returns (next stage's tokens, their hw_shape, this stage's tokens, their hw_shape)."""
        for block in self.blocks:
            x = block(x, hw_shape)
        if self.downsample:
            x_down, down_hw_shape = self.downsample(x, hw_shape)
            return x_down, down_hw_shape, x, hw_shape
        return x, hw_shape, x, hw_shape
