"""Key conversions from the original Swin and PVT repositories' checkpoints.

The checkpoints published with the papers (github.com/SwinTransformer,
github.com/whai362/PVT) name and lay out some weights differently from
MMDetection's modules; these functions rename and reshape them the way
MMDetection 3.3's ``swin_converter`` and ``pvt_convert`` do, so that
``convert_weights=True`` loads those files.
"""
from collections import OrderedDict
from typing import Dict

import torch
from torch import Tensor

#: The original Swin's PatchMerging concatenates a 2x2 neighbourhood as four blocks of C
#: channels, pixels in the order (row, column) (0,0), (1,0), (0,1), (1,1); ``nn.Unfold``
#: gives channel-major features, pixels in row-major order (0,0), (0,1), (1,0), (1,1).
#: Taking the blocks in this order and moving the channel first converts one to the other.
UNFOLD_BLOCK_ORDER = [0, 2, 1, 3]


def _unfold_order_2d(weight: Tensor) -> Tensor:
    """Reorder the input columns of a PatchMerging ``reduction`` weight (out, 4 * C)."""
    out_channels, in_channels = weight.shape
    weight = weight.reshape(out_channels, 4, in_channels // 4)
    return weight[:, UNFOLD_BLOCK_ORDER, :].transpose(1, 2).reshape(out_channels, in_channels)


def _unfold_order_1d(vector: Tensor) -> Tensor:
    """Reorder a PatchMerging ``norm`` weight or bias (4 * C, ) the same way."""
    in_channels = vector.shape[0]
    vector = vector.reshape(4, in_channels // 4)
    return vector[UNFOLD_BLOCK_ORDER, :].transpose(0, 1).reshape(in_channels)


def swin_converter(ckpt: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """An original Swin checkpoint's weights with MMDetection's ``backbone.`` keys.

    ``layers.i`` becomes ``stages.i``, ``attn.`` ``attn.w_msa.``, ``mlp.fc1``/``fc2``
    ``ffn.layers.0.0``/``ffn.layers.1``, ``patch_embed.proj`` ``patch_embed.projection``;
    PatchMerging weights are reordered for ``nn.Unfold``; the classifier (``head``) is
    dropped. Every returned key starts with ``backbone.``.
    """
    converted = OrderedDict()
    for key, value in ckpt.items():
        if key.startswith('head'):
            continue
        new_key, new_value = key, value
        if key.startswith('layers'):
            if 'attn.' in key:
                new_key = key.replace('attn.', 'attn.w_msa.')
            elif 'mlp.fc1.' in key:
                new_key = key.replace('mlp.fc1.', 'ffn.layers.0.0.')
            elif 'mlp.fc2.' in key:
                new_key = key.replace('mlp.fc2.', 'ffn.layers.1.')
            elif 'mlp.' in key:
                new_key = key.replace('mlp.', 'ffn.')
            elif 'downsample' in key:
                if 'reduction.' in key:
                    new_value = _unfold_order_2d(value)
                elif 'norm.' in key:
                    new_value = _unfold_order_1d(value)
            new_key = new_key.replace('layers', 'stages', 1)
        elif key.startswith('patch_embed') and 'proj' in key:
            new_key = key.replace('proj', 'projection')
        converted['backbone.' + new_key] = new_value
    return converted


def pvt_convert(ckpt: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """An original PVT or PVTv2 checkpoint's weights with MMDetection's keys.

    ``patch_embed{i}`` becomes ``layers.{i-1}.0``, ``pos_embed{i}``
    ``layers.{i-1}.1.0.pos_embed`` (PVTv1's last one loses its class token),
    ``block{i}.{j}`` ``layers.{i-1}.1.{j}`` (``j + 1`` when position embeddings take
    slot 0), ``norm{i}`` ``layers.{i-1}.2``; the separate ``q`` and ``kv`` projections
    are concatenated into ``attn.in_proj_*``, ``proj`` becomes ``attn.out_proj``, the
    MLP's linears become 1x1 convs of ``ffn.layers``. The classifier (``head``), the
    final ``norm.`` and ``cls_token`` are dropped.
    """
    use_abs_pos_embed = any(key.startswith('pos_embed') for key in ckpt)
    use_conv_ffn = any('dwconv' in key for key in ckpt)
    converted = OrderedDict()
    for key, value in ckpt.items():
        if key.startswith(('head', 'norm.', 'cls_token')):
            continue
        new_key, new_value = key, value
        if key.startswith('pos_embed'):
            stage = int(key.replace('pos_embed', ''))
            new_key = key.replace(f'pos_embed{stage}', f'layers.{stage - 1}.1.0.pos_embed')
            if stage == 4 and value.size(1) == 50:  # a class token + 7 * 7 patches
                new_value = value[:, 1:, :]
        elif key.startswith('patch_embed'):
            stage = int(key.split('.')[0].replace('patch_embed', ''))
            new_key = key.replace(f'patch_embed{stage}', f'layers.{stage - 1}.0')
            new_key = new_key.replace('proj.', 'projection.')
        elif key.startswith('block'):
            stage, layer = int(key.split('.')[0].replace('block', '')), int(key.split('.')[1])
            new_key = key.replace(f'block{stage}.{layer}',
                                  f'layers.{stage - 1}.1.{layer + use_abs_pos_embed}')
            if 'attn.kv.' in new_key:
                continue  # concatenated with attn.q.
            if 'attn.q.' in new_key:
                new_key = new_key.replace('q.', 'attn.in_proj_')
                new_value = torch.cat([value, ckpt[key.replace('q.', 'kv.')]], dim=0)
            elif 'attn.proj.' in new_key:
                new_key = new_key.replace('proj.', 'attn.out_proj.')
            elif 'mlp.' in new_key:
                new_key = new_key.replace('mlp.', 'ffn.layers.')
                if 'fc1.weight' in new_key or 'fc2.weight' in new_key:
                    new_value = value.reshape((*value.shape, 1, 1))
                new_key = new_key.replace('fc1.', '0.').replace('dwconv.dwconv.', '1.')
                new_key = new_key.replace('fc2.', '4.' if use_conv_ffn else '3.')
        elif key.startswith('norm'):
            stage = int(key[4])
            new_key = key.replace(f'norm{stage}', f'layers.{stage - 1}.2')
        converted[new_key] = new_value
    return converted
