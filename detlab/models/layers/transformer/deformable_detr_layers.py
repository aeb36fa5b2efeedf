"""Deformable DETR's encoder and decoder: deformable attention over all levels."""
from typing import Optional, Tuple, Union

import torch
from mmcv.cnn import build_norm_layer
from mmengine.model import ModuleList
from torch import Tensor, nn

from .detr_layers import (DetrTransformerDecoder, DetrTransformerDecoderLayer,
                          DetrTransformerEncoder, DetrTransformerEncoderLayer)
from .ms_deform_attn import MultiScaleDeformableAttention
from .utils import FFN, MultiheadAttention, inverse_sigmoid


class DeformableDetrTransformerEncoderLayer(DetrTransformerEncoderLayer):
    """Deformable self-attention over the flattened levels, then FFN."""

    def _init_layers(self) -> None:
        self.self_attn = MultiScaleDeformableAttention(**self.self_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(build_norm_layer(self.norm_cfg, self.embed_dims)[1]
                                for _ in range(2))


class DeformableDetrTransformerDecoderLayer(DetrTransformerDecoderLayer):
    """Self-attention among queries, deformable cross-attention, FFN."""

    def _init_layers(self) -> None:
        self.self_attn = MultiheadAttention(**self.self_attn_cfg)
        self.cross_attn = MultiScaleDeformableAttention(**self.cross_attn_cfg)
        self.embed_dims = self.self_attn.embed_dims
        self.ffn = FFN(**self.ffn_cfg)
        self.norms = ModuleList(build_norm_layer(self.norm_cfg, self.embed_dims)[1]
                                for _ in range(3))


def scale_by_valid_ratios(reference_points: Tensor, valid_ratios: Tensor) -> Tensor:
    """(B, Q, 2 or 4) normalised references -> (B, Q, L, 2 or 4) per level,
    scaled by each level's (B, L, 2) unpadded fraction ``w, h``."""
    if reference_points.shape[-1] == 4:
        valid_ratios = torch.cat([valid_ratios, valid_ratios], -1)
    elif reference_points.shape[-1] != 2:
        raise ValueError(f'reference_points must end in 2 or 4 values, got shape '
                         f'{tuple(reference_points.shape)}')
    return reference_points[:, :, None] * valid_ratios[:, None]


class DeformableDetrTransformerEncoder(DetrTransformerEncoder):
    """Encoder whose every token attends around its own pixel centre."""
    layer_type = DeformableDetrTransformerEncoderLayer

    def forward(self, query: Tensor, query_pos: Tensor, key_padding_mask: Tensor,
                spatial_shapes: Tensor, level_start_index: Tensor, valid_ratios: Tensor,
                **kwargs) -> Tensor:
        reference_points = self.get_encoder_reference_points(spatial_shapes, valid_ratios,
                                                             device=query.device)
        for index in range(self.num_layers):
            query = self._run_layer(index, query=query, query_pos=query_pos,
                                    key_padding_mask=key_padding_mask,
                                    spatial_shapes=spatial_shapes,
                                    level_start_index=level_start_index,
                                    valid_ratios=valid_ratios, reference_points=reference_points,
                                    **kwargs)
        return query

    @staticmethod
    def get_encoder_reference_points(spatial_shapes: Tensor, valid_ratios: Tensor,
                                     device: Union[torch.device, str]) -> Tensor:
        """Pixel centres of every level, normalised by the unpadded size.

        Returns:
            Tensor: (B, sum H_l * W_l, L, 2) ``x, y`` per token and level.
        """
        reference_points_list = []
        for lvl, (height, width) in enumerate(spatial_shapes):
            ref_y, ref_x = torch.meshgrid(
                torch.linspace(0.5, height - 0.5, height, dtype=torch.float32, device=device),
                torch.linspace(0.5, width - 0.5, width, dtype=torch.float32, device=device),
                indexing='ij')
            ref_y = ref_y.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * height)
            ref_x = ref_x.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * width)
            reference_points_list.append(torch.stack((ref_x, ref_y), -1))
        reference_points = torch.cat(reference_points_list, 1)
        return reference_points[:, :, None] * valid_ratios[:, None]


class DeformableDetrTransformerDecoder(DetrTransformerDecoder):
    """Decoder whose queries attend around reference points; with
    ``reg_branches`` each layer refines the references (box refinement)."""
    layer_type = DeformableDetrTransformerDecoderLayer

    def _init_layers(self) -> None:
        if self.post_norm_cfg is not None:
            raise ValueError(f'{type(self).__name__} has no post norm; set post_norm_cfg=None, '
                             f'got {self.post_norm_cfg!r}')
        self.layers = ModuleList(self.layer_type(**self.layer_cfg) for _ in range(self.num_layers))
        self.embed_dims = self.layers[0].embed_dims

    def forward(self, query: Tensor, query_pos: Tensor, value: Tensor, key_padding_mask: Tensor,
                reference_points: Tensor, spatial_shapes: Tensor, level_start_index: Tensor,
                valid_ratios: Tensor, reg_branches: Optional[nn.Module] = None,
                **kwargs) -> Tuple[Tensor, Tensor]:
        """Returns the (num_layers, B, Q, C) states and the (num_layers, B, Q,
        2 or 4) references each layer ended with (or only the last ones)."""
        output = query
        intermediate, intermediate_reference_points = [], []
        for layer_id, layer in enumerate(self.layers):
            output = layer(output, query_pos=query_pos, value=value,
                           key_padding_mask=key_padding_mask, spatial_shapes=spatial_shapes,
                           level_start_index=level_start_index, valid_ratios=valid_ratios,
                           reference_points=scale_by_valid_ratios(reference_points, valid_ratios),
                           **kwargs)
            if reg_branches is not None:
                tmp_reg_preds = reg_branches[layer_id](output)
                if reference_points.shape[-1] == 4:
                    new_reference_points = tmp_reg_preds + inverse_sigmoid(reference_points)
                else:
                    new_reference_points = torch.cat(
                        (tmp_reg_preds[..., :2] + inverse_sigmoid(reference_points),
                         tmp_reg_preds[..., 2:]), -1)
                reference_points = new_reference_points.sigmoid().detach()
            if self.return_intermediate:
                intermediate.append(output)
                intermediate_reference_points.append(reference_points)
        if self.return_intermediate:
            return torch.stack(intermediate), torch.stack(intermediate_reference_points)
        return output, reference_points
