"""Pyramid Vision Transformer v1 and v2 (Wang et al., 2021) with MMDetection 3.3's
config and state_dict keys.

Each stage embeds patches (a strided conv and a norm), optionally adds an absolute
position embedding, and runs encoder layers whose attention reads keys and values
from a map shrunk by ``sr_ratio`` (spatial-reduction attention). PVTv2 embeds with
overlapping patches, puts a depth-wise conv in the FFN and norms each stage's output.
Original checkpoints load with ``convert_weights=True`` (:func:`pvt_convert`).
"""
import math
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.cnn import build_activation_layer, build_norm_layer
from mmcv.cnn.bricks.drop import build_dropout
from mmengine.logging import print_log
from mmengine.model import BaseModule, ModuleList, Sequential
from mmengine.model.weight_init import constant_init, normal_init, trunc_normal_, trunc_normal_init
from mmengine.runner.checkpoint import load_state_dict
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers.pretrained_init import load_backbone_checkpoint
from ..layers.transformer.patch_layers import (PatchEmbed, image_size_pair, nchw_to_nlc,
                                               nlc_to_nchw)
from ..layers.transformer.utils import MultiheadAttention
from ..layers.transformer.weight_converters import pvt_convert
from .base_backbone import backbone_init_cfg


class MixFFN(BaseModule):
    """FFN of 1x1 convs on the token map, with an optional 3x3 depth-wise conv between
    them that encodes position (``layers``: fc1, [dw_conv], act, drop, fc2, drop).

    Args:
        embed_dims (int): Channels. feedforward_channels (int): Hidden channels.
        act_cfg (dict): Activation. Defaults to GELU.
        ffn_drop (float): Dropout. Defaults to 0.
        dropout_layer (dict, optional): Applied before the residual sum (DropPath).
        use_conv (bool): Add the depth-wise conv. Defaults to False.
    """

    def __init__(self, embed_dims: int, feedforward_channels: int,
                 act_cfg: dict = dict(type='GELU'), ffn_drop: float = 0.,
                 dropout_layer: Optional[dict] = None, use_conv: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.feedforward_channels = feedforward_channels
        self.act_cfg = act_cfg
        drop = nn.Dropout(ffn_drop)
        layers = [nn.Conv2d(embed_dims, feedforward_channels, kernel_size=1, bias=True),
                  build_activation_layer(act_cfg), drop,
                  nn.Conv2d(feedforward_channels, embed_dims, kernel_size=1, bias=True), drop]
        if use_conv:
            layers.insert(1, nn.Conv2d(feedforward_channels, feedforward_channels,
                                       kernel_size=3, padding=1, bias=True,
                                       groups=feedforward_channels))
        self.layers = Sequential(*layers)
        self.dropout_layer = build_dropout(dropout_layer) if dropout_layer else nn.Identity()

    def forward(self, x: Tensor, hw_shape: Tuple[int, int],
                identity: Optional[Tensor] = None) -> Tensor:
        """(B, H*W, C) tokens -> ``identity + FFN(x)``, ``identity`` defaulting to ``x``."""
        out = nchw_to_nlc(self.layers(nlc_to_nchw(x, hw_shape)))
        return (x if identity is None else identity) + self.dropout_layer(out)


class SpatialReductionAttention(MultiheadAttention):
    """mmcv's MultiheadAttention whose keys and values come from the token map shrunk
    by a ``sr_ratio``-strided conv (``sr``) and a norm (``norm``), when ``sr_ratio > 1``.

    Args:
        embed_dims (int): Channels. num_heads (int): Heads.
        attn_drop, proj_drop (float): Dropouts. dropout_layer (dict, optional): DropPath.
        batch_first (bool): Tokens are (B, N, C). Defaults to True.
        qkv_bias (bool): Bias in the projections. Defaults to True.
        norm_cfg (dict): Norm after ``sr``. Defaults to LN.
        sr_ratio (int): Spatial reduction. Defaults to 1 (none).
    """

    def __init__(self, embed_dims: int, num_heads: int, attn_drop: float = 0.,
                 proj_drop: float = 0., dropout_layer: Optional[dict] = None,
                 batch_first: bool = True, qkv_bias: bool = True,
                 norm_cfg: dict = dict(type='LN'), sr_ratio: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(embed_dims, num_heads, attn_drop, proj_drop, batch_first=batch_first,
                         dropout_layer=dropout_layer, bias=qkv_bias, init_cfg=init_cfg)
        self.sr_ratio = sr_ratio
        if sr_ratio > 1:
            self.sr = nn.Conv2d(embed_dims, embed_dims, kernel_size=sr_ratio, stride=sr_ratio)
            self.norm = build_norm_layer(norm_cfg, embed_dims)[1]

    def forward(self, x: Tensor, hw_shape: Tuple[int, int],
                identity: Optional[Tensor] = None) -> Tensor:
        """(B, H*W, C) tokens -> ``identity + attention(x)``."""
        x_kv = x
        if self.sr_ratio > 1:
            x_kv = self.norm(nchw_to_nlc(self.sr(nlc_to_nchw(x, hw_shape))))
        identity = x if identity is None else identity
        x_q = x
        if self.batch_first:  # nn.MultiheadAttention takes (N, B, C)
            x_q, x_kv = x_q.transpose(0, 1), x_kv.transpose(0, 1)
        out = self.attn(query=x_q, key=x_kv, value=x_kv)[0]
        if self.batch_first:
            out = out.transpose(0, 1)
        return identity + self.dropout_layer(self.proj_drop(out))


class PVTEncoderLayer(BaseModule):
    """``x + attn(norm1(x))``, then ``x + ffn(norm2(x))``.

    Args:
        embed_dims (int), num_heads (int), feedforward_channels (int): Sizes.
        drop_rate, attn_drop_rate, drop_path_rate (float): Dropout rates.
        qkv_bias (bool), act_cfg (dict), norm_cfg (dict), sr_ratio (int): As the parts.
        use_conv_ffn (bool): Depth-wise conv in the FFN (PVTv2).
    """

    def __init__(self, embed_dims: int, num_heads: int, feedforward_channels: int,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.,
                 qkv_bias: bool = True, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN'), sr_ratio: int = 1,
                 use_conv_ffn: bool = False, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.norm1 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.attn = SpatialReductionAttention(
            embed_dims=embed_dims, num_heads=num_heads, attn_drop=attn_drop_rate,
            proj_drop=drop_rate, dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
            qkv_bias=qkv_bias, norm_cfg=norm_cfg, sr_ratio=sr_ratio)
        self.norm2 = build_norm_layer(norm_cfg, embed_dims)[1]
        self.ffn = MixFFN(embed_dims=embed_dims, feedforward_channels=feedforward_channels,
                          ffn_drop=drop_rate,
                          dropout_layer=dict(type='DropPath', drop_prob=drop_path_rate),
                          use_conv=use_conv_ffn, act_cfg=act_cfg)

    def forward(self, x: Tensor, hw_shape: Tuple[int, int]) -> Tensor:
        x = self.attn(self.norm1(x), hw_shape, identity=x)
        return self.ffn(self.norm2(x), hw_shape, identity=x)


class AbsolutePositionEmbedding(BaseModule):
    """A learnt (1, h*w, C) position embedding, resized bilinearly to each input's map.

    Args:
        pos_shape (int | tuple[int]): The (h, w) it is learnt at.
        pos_dim (int): Channels. drop_rate (float): Dropout after the sum.
    """

    def __init__(self, pos_shape: Union[int, Tuple[int, ...]], pos_dim: int,
                 drop_rate: float = 0., init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pos_shape = image_size_pair(pos_shape)
        self.pos_dim = pos_dim
        self.pos_embed = nn.Parameter(
            torch.zeros(1, self.pos_shape[0] * self.pos_shape[1], pos_dim))
        self.drop = nn.Dropout(p=drop_rate)

    def init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)

    def resize_pos_embed(self, pos_embed: Tensor, input_shape: Tuple[int, int],
                         mode: str = 'bilinear') -> Tensor:
        """(1, L, C) embedding (its last h*w entries) -> (1, H*W, C) for an H x W map."""
        if pos_embed.dim() != 3:
            raise AssertionValueError(f'pos_embed must be (B, L, C), got {tuple(pos_embed.shape)}')
        height, width = self.pos_shape
        grid = pos_embed[:, -height * width:].reshape(1, height, width,
                                                      self.pos_dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid.contiguous(), size=input_shape, mode=mode)
        return torch.flatten(grid, 2).transpose(1, 2).contiguous()

    def forward(self, x: Tensor, hw_shape: Tuple[int, int], mode: str = 'bilinear') -> Tensor:
        return self.drop(x + self.resize_pos_embed(self.pos_embed, hw_shape, mode))


@MODELS.register_module()
class PyramidVisionTransformer(BaseModule):
    """PVT backbone. Stage ``i`` is ``layers.i``: [PatchEmbed, [position embedding,]
    encoder layers, norm or Identity], with ``embed_dims * num_heads[i]`` channels.

    Args:
        pretrain_img_size (int | tuple[int]): Pre-training size, for the position
            embeddings' shapes. Defaults to 224.
        in_channels (int): Input channels. Defaults to 3.
        embed_dims (int): Channels per head. Defaults to 64.
        num_stages (int): Stages. Defaults to 4.
        num_layers, num_heads, patch_sizes, strides, paddings, sr_ratios, mlp_ratios
            (Sequence[int]): Per stage: encoder layers (3, 4, 6, 3), heads (1, 2, 5, 8),
            patch embedding kernel (4, 2, 2, 2), stride (4, 2, 2, 2) and padding
            (0, 0, 0, 0), spatial reduction (8, 4, 2, 1), FFN ratio (8, 8, 4, 4).
        out_indices (Sequence[int]): Stages returned. Defaults to (0, 1, 2, 3).
        qkv_bias (bool): Defaults to True.
        drop_rate, attn_drop_rate (float): Dropouts. Defaults to 0.
        drop_path_rate (float): Stochastic depth, rising linearly from 0 over all
            layers to this. Defaults to 0.1.
        use_abs_pos_embed (bool): Position embeddings. Defaults to True.
        norm_after_stage (bool): Norm each stage's output. Defaults to False.
        use_conv_ffn (bool): Depth-wise conv in the FFN. Defaults to False.
        act_cfg, norm_cfg (dict): GELU and LN (eps 1e-6).
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        convert_weights (bool): The checkpoint has the original repository's keys.
            Defaults to True.
        init_cfg (dict, optional): ``dict(type='Pretrained', checkpoint=...)``; None
            initialises from scratch.
    """

    def __init__(self, pretrain_img_size: Union[int, Tuple[int, ...]] = 224,
                 in_channels: int = 3, embed_dims: int = 64, num_stages: int = 4,
                 num_layers: Sequence[int] = (3, 4, 6, 3),
                 num_heads: Sequence[int] = (1, 2, 5, 8),
                 patch_sizes: Sequence[int] = (4, 2, 2, 2), strides: Sequence[int] = (4, 2, 2, 2),
                 paddings: Sequence[int] = (0, 0, 0, 0), sr_ratios: Sequence[int] = (8, 4, 2, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 mlp_ratios: Sequence[int] = (8, 8, 4, 4), qkv_bias: bool = True,
                 drop_rate: float = 0., attn_drop_rate: float = 0., drop_path_rate: float = 0.1,
                 use_abs_pos_embed: bool = True, norm_after_stage: bool = False,
                 use_conv_ffn: bool = False, act_cfg: dict = dict(type='GELU'),
                 norm_cfg: dict = dict(type='LN', eps=1e-6), pretrained: Optional[str] = None,
                 convert_weights: bool = True, init_cfg: Optional[dict] = None) -> None:
        owner = type(self).__name__
        if pretrained is not None:
            init_cfg = backbone_init_cfg(owner, init_cfg, pretrained)
        super().__init__(init_cfg=init_cfg)
        self.convert_weights = convert_weights
        pretrain_img_size = image_size_pair(pretrain_img_size)
        per_stage = dict(num_layers=num_layers, num_heads=num_heads, patch_sizes=patch_sizes,
                         strides=strides, sr_ratios=sr_ratios)
        if any(len(value) != num_stages for value in per_stage.values()):
            raise AssertionValueError(
                f'{owner}: num_stages={num_stages}, but ' + ', '.join(
                    f'{name} has {len(value)}' for name, value in per_stage.items()) + '.')
        if not all(0 <= i < num_stages for i in out_indices):
            raise AssertionValueError(f'{owner}: out_indices={tuple(out_indices)} must be '
                                      f'stages in [0, {num_stages}).')
        self.embed_dims = embed_dims
        self.num_stages = num_stages
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.patch_sizes = patch_sizes
        self.strides = strides
        self.sr_ratios = sr_ratios
        self.out_indices = out_indices
        self.pretrained = pretrained

        # Computed on the CPU so that the model also builds on the 'meta' device.
        rates = torch.linspace(0, drop_path_rate, sum(num_layers), device='cpu').tolist()
        first = 0
        self.layers = ModuleList()
        for i, num_layer in enumerate(num_layers):
            channels = embed_dims * num_heads[i]
            patch_embed = PatchEmbed(in_channels=in_channels, embed_dims=channels,
                                     kernel_size=patch_sizes[i], stride=strides[i],
                                     padding=paddings[i], bias=True, norm_cfg=norm_cfg)
            blocks = ModuleList()
            if use_abs_pos_embed:
                # numpy's division keeps MMDetection's (h, w) from a (h, w) pretrain size.
                pos_shape = tuple(int(side) for side in
                                  np.array(pretrain_img_size) // np.prod(patch_sizes[:i + 1]))
                blocks.append(AbsolutePositionEmbedding(pos_shape=pos_shape, pos_dim=channels,
                                                        drop_rate=drop_rate))
            blocks.extend(
                PVTEncoderLayer(embed_dims=channels, num_heads=num_heads[i],
                                feedforward_channels=mlp_ratios[i] * channels,
                                drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                                drop_path_rate=rates[first + j], qkv_bias=qkv_bias,
                                act_cfg=act_cfg, norm_cfg=norm_cfg, sr_ratio=sr_ratios[i],
                                use_conv_ffn=use_conv_ffn) for j in range(num_layer))
            in_channels = channels
            norm = build_norm_layer(norm_cfg, channels)[1] if norm_after_stage else nn.Identity()
            self.layers.append(ModuleList([patch_embed, blocks, norm]))
            first += num_layer

    def init_weights(self) -> None:
        """Load ``init_cfg``'s checkpoint, or without one initialise from scratch."""
        owner = type(self).__name__
        if self.init_cfg is None:
            print_log(f'{owner}: no pre-trained weights, training starts from scratch',
                      logger='current')
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    trunc_normal_init(module, std=.02, bias=0.)
                elif isinstance(module, nn.LayerNorm):
                    constant_init(module, 1.0)
                elif isinstance(module, nn.Conv2d):
                    fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                    normal_init(module, 0, math.sqrt(2.0 / (fan_out // module.groups)))
                elif isinstance(module, AbsolutePositionEmbedding):
                    module.init_weights()
            return
        state_dict = load_backbone_checkpoint(owner, self.init_cfg)
        if self.convert_weights:
            state_dict = pvt_convert(state_dict)
        load_state_dict(self, state_dict, strict=False, logger='current')

    def forward(self, x: Tensor) -> List[Tensor]:
        """(B, C, H, W) images -> one (B, C_i, H_i, W_i) map per output stage."""
        outs = []
        for i, (patch_embed, blocks, norm) in enumerate(self.layers):
            x, hw_shape = patch_embed(x)
            for block in blocks:
                x = block(x, hw_shape)
            x = nlc_to_nchw(norm(x), hw_shape)
            if i in self.out_indices:
                outs.append(x)
        return outs


@MODELS.register_module()
class PyramidVisionTransformerV2(PyramidVisionTransformer):
    """PVTv2: overlapping patch embeddings (kernels 7, 3, 3, 3), no position
    embedding, a depth-wise conv in the FFN and a norm after each stage."""

    def __init__(self, **kwargs) -> None:
        fixed = ('patch_sizes', 'paddings', 'use_abs_pos_embed', 'norm_after_stage',
                 'use_conv_ffn')
        given = sorted(set(fixed) & set(kwargs))
        if given:
            raise AssertionValueError(f'PyramidVisionTransformerV2 fixes {given}; drop them '
                                      'from the config (or use PyramidVisionTransformer).')
        super().__init__(patch_sizes=[7, 3, 3, 3], paddings=[3, 1, 1, 1],
                         use_abs_pos_embed=False, norm_after_stage=True, use_conv_ffn=True,
                         **kwargs)
