"""Swin Transformer (Liu et al., 2021) with MMDetection 3.3's config and state_dict keys.

A ``PatchEmbed`` stem, then stages of Swin blocks (window attention with a
relative position bias, alternately on windows shifted by half a window),
each but the last ending in ``PatchMerging``; every output stage gets its own
LayerNorm (``norm{i}``). Original checkpoints load with ``convert_weights=True``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_, trunc_normal_init
from mmengine.runner.checkpoint import load_state_dict
from mmengine.utils import to_2tuple
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers.pretrained_init import load_backbone_checkpoint, select_prefix
from ..layers.transformer.patch_layers import FFN, PatchEmbed, PatchMerging
from ..layers.transformer.weight_converters import swin_converter
from .base_backbone import FreezableBackbone, backbone_init_cfg

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


@MODELS.register_module()
class SwinTransformer(FreezableBackbone):
    """Swin Transformer backbone.

    Args:
        pretrain_img_size (int | tuple[int]): Image size of pre-training, for the
            absolute position embedding. Defaults to 224.
        in_channels (int): Input channels. Defaults to 3.
        embed_dims (int): Channels of stage 0 (doubled at each stage). Defaults to 96.
        patch_size (int): Patch side of the stem; must equal ``strides[0]``. Defaults to 4.
        window_size (int): Window side. Defaults to 7.
        mlp_ratio (int): FFN hidden channels / channels. Defaults to 4.
        depths (Sequence[int]): Blocks per stage. Defaults to (2, 2, 6, 2).
        num_heads (Sequence[int]): Heads per stage. Defaults to (3, 6, 12, 24).
        strides (Sequence[int]): Stem and PatchMerging strides. Defaults to (4, 2, 2, 2).
        out_indices (Sequence[int]): Stages whose normed outputs are returned.
        qkv_bias (bool), qk_scale (float, optional): As :class:`WindowMSA`.
        patch_norm (bool): LayerNorm in the stem and PatchMerging. Defaults to True.
        drop_rate, attn_drop_rate (float): Dropout rates. Defaults to 0.
        drop_path_rate (float): Stochastic depth, rising linearly from 0 over all
            blocks to this. Defaults to 0.1.
        use_abs_pos_embed (bool): Add a learnt absolute position embedding after the
            stem (inputs must then be ``pretrain_img_size``). Defaults to False.
        act_cfg, norm_cfg (dict): Activation (GELU) and norm (LN).
        with_cp (bool): Recompute blocks in backward. Defaults to False.
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        convert_weights (bool): The checkpoint has the original repository's keys
            (converted by :func:`swin_converter`). Defaults to False.
        frozen_stages (int): Freeze the stem and stages ``0 .. frozen_stages - 1``
            (with their output norms); -1 freezes nothing. Defaults to -1.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``; None
            gives truncated-normal linears and unit LayerNorms.
    """

    def __init__(self, pretrain_img_size: Union[int, Tuple[int, ...]] = 224,
                 in_channels: int = 3, embed_dims: int = 96, patch_size: int = 4,
                 window_size: int = 7, mlp_ratio: int = 4,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 strides: Sequence[int] = (4, 2, 2, 2),
                 out_indices: Sequence[int] = (0, 1, 2, 3), qkv_bias: bool = True,
                 qk_scale: Optional[float] = None, patch_norm: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.1,
                 use_abs_pos_embed: bool = False, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), with_cp: bool = False,
                 pretrained: Optional[str] = None, convert_weights: bool = False,
                 frozen_stages: int = -1, init_cfg: Optional[dict] = None) -> None:
        if pretrained is not None:
            init_cfg = backbone_init_cfg('SwinTransformer', init_cfg, pretrained)
        super().__init__(init_cfg=init_cfg)
        self.convert_weights = convert_weights
        self.frozen_stages = frozen_stages
        pretrain_img_size = image_size_pair(pretrain_img_size)
        if strides[0] != patch_size:
            raise AssertionValueError(f'SwinTransformer: strides[0]={strides[0]} must equal '
                                      f'patch_size={patch_size} (non-overlapping patches).')
        if len(depths) != len(num_heads) or len(strides) != len(depths):
            raise AssertionValueError(
                f'SwinTransformer: depths={tuple(depths)}, num_heads={tuple(num_heads)} and '
                f'strides={tuple(strides)} must have one entry per stage.')
        num_layers = len(depths)
        if not all(0 <= i < num_layers for i in out_indices):
            raise AssertionValueError(f'SwinTransformer: out_indices={tuple(out_indices)} must '
                                      f'be stages in [0, {num_layers}).')
        self.out_indices = out_indices
        self.use_abs_pos_embed = use_abs_pos_embed
        self.patch_embed = PatchEmbed(in_channels=in_channels, embed_dims=embed_dims,
                                      conv_type='Conv2d', kernel_size=patch_size,
                                      stride=strides[0],
                                      norm_cfg=norm_cfg if patch_norm else None)
        if use_abs_pos_embed:
            num_patches = (pretrain_img_size[0] // patch_size) * (pretrain_img_size[1] //
                                                                  patch_size)
            self.absolute_pos_embed = nn.Parameter(torch.zeros((1, num_patches, embed_dims)))
        self.drop_after_pos = nn.Dropout(p=drop_rate)

        # Computed on the CPU so that the model also builds on the 'meta' device.
        rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.stages = ModuleList()
        channels = embed_dims
        for i in range(num_layers):
            downsample = None
            if i < num_layers - 1:
                downsample = PatchMerging(in_channels=channels, out_channels=2 * channels,
                                          stride=strides[i + 1],
                                          norm_cfg=norm_cfg if patch_norm else None)
            self.stages.append(SwinBlockSequence(
                embed_dims=channels, num_heads=num_heads[i],
                feedforward_channels=mlp_ratio * channels, depth=depths[i],
                window_size=window_size, qkv_bias=qkv_bias, qk_scale=qk_scale,
                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                drop_path_rate=rates[sum(depths[:i]):sum(depths[:i + 1])],
                downsample=downsample, act_cfg=act_cfg, norm_cfg=norm_cfg, with_cp=with_cp))
            if downsample:
                channels = downsample.out_channels
        self.num_features = [int(embed_dims * 2**i) for i in range(num_layers)]
        for i in out_indices:
            self.add_module(f'norm{i}', build_norm_layer(norm_cfg, self.num_features[i])[1])

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            self.patch_embed.eval()
            for param in self.patch_embed.parameters():
                param.requires_grad = False
            if self.use_abs_pos_embed:
                self.absolute_pos_embed.requires_grad = False
            self.drop_after_pos.eval()
        for i in range(1, self.frozen_stages + 1):
            frozen = [self.stages[i - 1]]
            if (i - 1) in self.out_indices:
                frozen.insert(0, getattr(self, f'norm{i - 1}'))
            for module in frozen:
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint, or without one initialise from scratch."""
        if self.init_cfg is None:
            print_log('SwinTransformer: no pre-trained weights, training starts from scratch',
                      logger='current')
            if self.use_abs_pos_embed:
                trunc_normal_(self.absolute_pos_embed, std=0.02)
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    trunc_normal_init(module, std=.02, bias=0.)
                elif isinstance(module, nn.LayerNorm):
                    constant_init(module, 1.0)
            return
        checkpoint = load_backbone_checkpoint('SwinTransformer', self.init_cfg)
        if self.convert_weights:
            checkpoint = swin_converter(checkpoint)
        state_dict = select_prefix(checkpoint, 'backbone.', self.init_cfg['checkpoint'])
        self._fit_position_weights(state_dict)
        load_state_dict(self, state_dict, strict=False, logger='current')

    def _fit_position_weights(self, state_dict: dict) -> None:
        """Adapt a checkpoint's position weights to this model in place: relative
        position bias tables of another window size are resized bicubically, and
        ones (or an absolute embedding) of the wrong shape are dropped with a warning."""
        own = self.state_dict()
        embed = state_dict.get('absolute_pos_embed')
        if embed is not None and (not self.use_abs_pos_embed
                                  or embed.shape != self.absolute_pos_embed.shape):
            print_log(f'SwinTransformer: absolute_pos_embed of shape {tuple(embed.shape)} does '
                      'not fit this model, not loaded', logger='current', level='WARNING')
            del state_dict['absolute_pos_embed']
        for key in [k for k in state_dict if 'relative_position_bias_table' in k]:
            if key not in own:
                continue
            table = state_dict[key]
            (length, heads), (own_length, own_heads) = table.shape, own[key].shape
            if heads != own_heads:
                print_log(f'SwinTransformer: {key} has {heads} heads, this model '
                          f'{own_heads}; not loaded', logger='current', level='WARNING')
                del state_dict[key]
            elif length != own_length:
                side, own_side = int(length**0.5), int(own_length**0.5)
                resized = F.interpolate(table.permute(1, 0).reshape(1, heads, side, side),
                                        size=(own_side, own_side), mode='bicubic')
                state_dict[key] = resized.view(own_heads, own_length).permute(1, 0).contiguous()

    def forward(self, x: Tensor) -> List[Tensor]:
        """(B, C, H, W) images -> one (B, C_i, H_i, W_i) map per output stage."""
        x, hw_shape = self.patch_embed(x)
        if self.use_abs_pos_embed:
            x = x + self.absolute_pos_embed
        x = self.drop_after_pos(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x, hw_shape, out, out_hw_shape = stage(x, hw_shape)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.view(-1, *out_hw_shape,
                                     self.num_features[i]).permute(0, 3, 1, 2).contiguous())
        return outs


def image_size_pair(size: Union[int, Tuple[int, ...]]) -> Tuple[int, int]:
    """``size`` or ``(size, )`` as (height, width).

    Raises:
        ValueError: A tuple of another length.
    """
    if isinstance(size, int):
        return to_2tuple(size)
    size = tuple(size)
    if len(size) == 1:
        return to_2tuple(size[0])
    if len(size) != 2:
        raise AssertionValueError(f'pretrain_img_size must be an int or have 1 or 2 entries, got '
                                  f'{size!r}.')
    return size
