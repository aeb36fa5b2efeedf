"""Swin Transformer (Liu et al., 2021) with MMDetection 3.3's config and state_dict keys.

A ``PatchEmbed`` stem, then stages of Swin blocks (window attention with a
relative position bias, alternately on windows shifted by half a window),
each but the last ending in ``PatchMerging``; every output stage gets its own
LayerNorm (``norm{i}``). Original checkpoints load with ``convert_weights=True``.
"""
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import build_norm_layer
from mmengine.logging import print_log
from mmengine.model import ModuleList
from mmengine.model.weight_init import constant_init, trunc_normal_, trunc_normal_init
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionKeyError, AssertionValueError
from ..layers.pretrained_init import load_backbone_checkpoint, select_prefix
from ..layers.transformer.patch_layers import PatchEmbed, PatchMerging, image_size_pair
from ..layers.transformer.swin_layers import SwinBlockSequence
from ..layers.transformer.weight_converters import swin_converter
from .base_backbone import FreezableBackbone, backbone_init_cfg

#: The prefix of a detector checkpoint's backbone weights, which init_weights loads.
BACKBONE_PREFIX = 'backbone.'


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
        # As MMDetection: only a detector's 'backbone.' weights (which swin_converter's keys
        # are) load.
        if not any(key.startswith(BACKBONE_PREFIX) for key in checkpoint):
            top_level = sorted({key.split('.', 1)[0] + '.' for key in checkpoint})
            raise AssertionKeyError(
                f"SwinTransformer: no key of init_cfg.checkpoint={self.init_cfg['checkpoint']!r}"
                f" starts with {BACKBONE_PREFIX!r} (its top-level prefixes are {top_level}). "
                'Set convert_weights=True for a checkpoint of the original Swin repository.')
        state_dict = select_prefix(checkpoint, BACKBONE_PREFIX, self.init_cfg['checkpoint'])
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
