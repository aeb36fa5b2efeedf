"""Positional encodings of feature maps for DETR-family transformers."""
import math
from typing import Optional

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from detlab.registry import MODELS


@MODELS.register_module()
class SinePositionalEncoding(BaseModule):
    """Sine/cosine encoding of each pixel's row and column (DETR).

    Args:
        num_feats (int): Features per axis; the encoding has ``2 * num_feats``
            channels, ``y`` first then ``x``.
        temperature (int): Base of the geometric frequency ladder.
        normalize (bool): Scale the cumulative positions to [0, ``scale``].
        scale (float): Range after normalisation. Defaults to 2 * pi.
        eps (float): Keeps the normalisation finite for empty rows.
        offset (float): Added to the positions before normalising.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self, num_feats: int, temperature: int = 10000, normalize: bool = False,
                 scale: float = 2 * math.pi, eps: float = 1e-6, offset: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if normalize and not isinstance(scale, (float, int)):
            raise TypeError(f'SinePositionalEncoding: scale must be a float or int when '
                            f'normalize=True, got {type(scale).__name__}')
        self.num_feats = num_feats
        self.temperature = temperature
        self.normalize = normalize
        self.scale = scale
        self.eps = eps
        self.offset = offset

    def forward(self, mask: Optional[Tensor], input: Optional[Tensor] = None) -> Tensor:
        """Encoding of a padded batch.

        Args:
            mask (Tensor, optional): (B, H, W), non-zero at padding. None when
                no image of the batch is padded; then ``input`` gives the shape.
            input (Tensor, optional): (B, C, H, W) features, read for the shape.

        Returns:
            Tensor: (B, 2 * num_feats, H, W).
        """
        if mask is None and input is None:
            raise ValueError('SinePositionalEncoding: give a mask or an input feature map')
        if mask is not None:
            batch, height, width = mask.size()
            device = mask.device
            not_mask = 1 - mask.to(torch.int)
            y_embed = not_mask.cumsum(1, dtype=torch.float32)
            x_embed = not_mask.cumsum(2, dtype=torch.float32)
        else:
            batch, _, height, width = input.shape
            device = input.device
            x_embed = torch.arange(1, width + 1, dtype=torch.float32,
                                   device=device).view(1, 1, -1).repeat(batch, height, 1)
            y_embed = torch.arange(1, height + 1, dtype=torch.float32,
                                   device=device).view(1, -1, 1).repeat(batch, 1, width)
        if self.normalize:
            y_embed = (y_embed + self.offset) / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = (x_embed + self.offset) / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_feats, dtype=torch.float32, device=device)
        dim_t = self.temperature**(2 * (dim_t // 2) / self.num_feats)
        pos_x = x_embed[:, :, :, None] / dim_t
        pos_y = y_embed[:, :, :, None] / dim_t
        pos_x = torch.stack((pos_x[:, :, :, 0::2].sin(), pos_x[:, :, :, 1::2].cos()),
                            dim=4).view(batch, height, width, -1)
        pos_y = torch.stack((pos_y[:, :, :, 0::2].sin(), pos_y[:, :, :, 1::2].cos()),
                            dim=4).view(batch, height, width, -1)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (f'num_feats={self.num_feats}, temperature={self.temperature}, '
                f'normalize={self.normalize}, scale={self.scale}, eps={self.eps}')


@MODELS.register_module()
class LearnedPositionalEncoding(BaseModule):
    """Learned row and column embeddings (``row_embed``, ``col_embed``).

    Args:
        num_feats (int): Features per axis; the encoding has ``2 * num_feats``
            channels, ``x`` first then ``y``.
        row_num_embed (int): Rows the table covers. Defaults to 50.
        col_num_embed (int): Columns the table covers. Defaults to 50.
        init_cfg (dict): Defaults to uniform embeddings, as MMDetection.
    """

    def __init__(self, num_feats: int, row_num_embed: int = 50, col_num_embed: int = 50,
                 init_cfg: Optional[dict] = dict(type='Uniform', layer='Embedding')) -> None:
        super().__init__(init_cfg=init_cfg)
        self.row_embed = nn.Embedding(row_num_embed, num_feats)
        self.col_embed = nn.Embedding(col_num_embed, num_feats)
        self.num_feats = num_feats
        self.row_num_embed = row_num_embed
        self.col_num_embed = col_num_embed

    def forward(self, mask: Tensor) -> Tensor:
        """(B, H, W) mask (read for its shape) -> (B, 2 * num_feats, H, W)."""
        height, width = mask.shape[-2:]
        if height > self.row_num_embed or width > self.col_num_embed:
            raise ValueError(f'LearnedPositionalEncoding: a {height}x{width} feature map needs '
                             f'row_num_embed >= {height} and col_num_embed >= {width}, have '
                             f'{self.row_num_embed} and {self.col_num_embed}')
        x_embed = self.col_embed(torch.arange(width, device=mask.device))
        y_embed = self.row_embed(torch.arange(height, device=mask.device))
        pos = torch.cat((x_embed.unsqueeze(0).repeat(height, 1, 1),
                         y_embed.unsqueeze(1).repeat(1, width, 1)), dim=-1)
        return pos.permute(2, 0, 1).unsqueeze(0).repeat(mask.shape[0], 1, 1, 1)

    def extra_repr(self) -> str:
        return (f'num_feats={self.num_feats}, row_num_embed={self.row_num_embed}, '
                f'col_num_embed={self.col_num_embed}')
