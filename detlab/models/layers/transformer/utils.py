"""Small pieces shared by the DETR-family transformers.

``FFN`` and ``MultiheadAttention`` are mmcv's own modules (pure PyTorch in
``mmcv-lite``), so detlab's layers carry MMDetection's ``state_dict`` keys
(``attn.in_proj_weight``, ``ffn.layers.0.0.weight``, ...). Importing mmcv's
transformer module warns that ``mmcv-lite`` lacks the compiled deformable
attention; detlab has its own (``ms_deform_attn.py``), so that warning is
silenced here and nowhere else.
"""
import math
import warnings

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    from mmcv.cnn.bricks.transformer import FFN, MultiheadAttention  # noqa: F401


def inverse_sigmoid(x: Tensor, eps: float = 1e-5) -> Tensor:
    """``log(x / (1 - x))`` of ``x`` clamped to [0, 1], both terms kept above ``eps``."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def _sine_cosine(embed: Tensor, dim_t: Tensor) -> Tensor:
    """(..., ) positions -> (..., num_feats) interleaved sin/cos features."""
    pos = embed[..., None] / dim_t
    return torch.stack((pos[..., 0::2].sin(), pos[..., 1::2].cos()), dim=-1).flatten(-2)


def coordinate_to_encoding(coord_tensor: Tensor, num_feats: int = 128, temperature: int = 10000,
                           scale: float = 2 * math.pi) -> Tensor:
    """Sine encoding of normalised points or boxes.

    Args:
        coord_tensor (Tensor): (B, N, 2) ``x, y`` or (B, N, 4) ``cx, cy, w, h``
            in [0, 1].

    Returns:
        Tensor: (B, N, 2 * num_feats) ordered ``y, x`` or (B, N, 4 * num_feats)
        ordered ``y, x, w, h``.
    """
    if coord_tensor.size(-1) not in (2, 4):
        raise ValueError(f'coordinate_to_encoding: the last dimension of coord_tensor must be '
                         f'2 or 4, got {coord_tensor.size(-1)}')
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coord_tensor.device)
    dim_t = temperature**(2 * (dim_t // 2) / num_feats)
    parts = [_sine_cosine(coord_tensor[..., i] * scale, dim_t)
             for i in range(coord_tensor.size(-1))]
    parts[0], parts[1] = parts[1], parts[0]
    return torch.cat(parts, dim=-1)


class MLP(BaseModule):
    """``num_layers`` linear layers with ReLU between them (keys ``layers.i``)."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        hidden = [hidden_dim] * (num_layers - 1)
        self.layers = ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim] + hidden, hidden + [output_dim]))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < self.num_layers - 1:
                x = F.relu(x)
        return x
