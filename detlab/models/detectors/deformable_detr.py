"""Deformable DETR (Zhu et al., 2021), with box refinement and two-stage options."""
import math
from typing import Dict, Optional, Tuple

import torch
from mmengine.model import xavier_init
from torch import Tensor, nn
from torch.nn.init import normal_

from detlab.registry import MODELS
from detlab.structures import OptSampleList
from ..layers import (DeformableDetrTransformerDecoder, DeformableDetrTransformerEncoder,
                      MultiScaleDeformableAttention, SinePositionalEncoding)
from .base_detr import DetectionTransformer, padding_masks, resize_mask


@MODELS.register_module()
class DeformableDETR(DetectionTransformer):
    """Deformable attention over ``num_feature_levels`` levels.

    Args:
        with_box_refine (bool): Each decoder layer refines the references
            with its own box branch.
        as_two_stage (bool): Encoder tokens propose the initial boxes; the
            ``num_queries`` best become the decoder's references.
        num_feature_levels (int): Levels of the neck. Defaults to 4.

    The head's ``share_pred_layer``, ``num_pred_layer`` and ``as_two_stage``
    follow from these and must not be set in ``bbox_head``.
    """

    def __init__(self, *args, decoder: Optional[dict] = None, bbox_head: Optional[dict] = None,
                 with_box_refine: bool = False, as_two_stage: bool = False,
                 num_feature_levels: int = 4, **kwargs) -> None:
        self.with_box_refine = with_box_refine
        self.as_two_stage = as_two_stage
        self.num_feature_levels = num_feature_levels
        if bbox_head is not None:
            set_here = {'share_pred_layer', 'num_pred_layer', 'as_two_stage'} & set(bbox_head)
            if set_here:
                raise ValueError(f'{type(self).__name__}: bbox_head must not set '
                                 f'{sorted(set_here)}; they follow from with_box_refine, '
                                 f'as_two_stage and decoder.num_layers')
            bbox_head = dict(bbox_head, share_pred_layer=not with_box_refine,
                             num_pred_layer=decoder['num_layers'] + int(as_two_stage),
                             as_two_stage=as_two_stage)
        super().__init__(*args, decoder=decoder, bbox_head=bbox_head, **kwargs)

    def _init_layers(self) -> None:
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = DeformableDetrTransformerEncoder(**self.encoder)
        self.decoder = DeformableDetrTransformerDecoder(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        if not self.as_two_stage:
            self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims * 2)
        self._check_num_feats()
        self.level_embed = nn.Parameter(torch.Tensor(self.num_feature_levels, self.embed_dims))
        if self.as_two_stage:
            self.memory_trans_fc = nn.Linear(self.embed_dims, self.embed_dims)
            self.memory_trans_norm = nn.LayerNorm(self.embed_dims)
            self.pos_trans_fc = nn.Linear(self.embed_dims * 2, self.embed_dims * 2)
            self.pos_trans_norm = nn.LayerNorm(self.embed_dims * 2)
        else:
            self.reference_points_fc = nn.Linear(self.embed_dims, 2)

    def _check_num_feats(self) -> None:
        num_feats = self.positional_encoding.num_feats
        if num_feats * 2 != self.embed_dims:
            raise ValueError(f'{type(self).__name__}: embed_dims ({self.embed_dims}) must be '
                             f'twice positional_encoding.num_feats ({num_feats})')

    def _init_transformer_weights(self) -> None:
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for m in self.modules():
            if isinstance(m, MultiScaleDeformableAttention):
                m.init_weights()

    def init_weights(self) -> None:
        super().init_weights()
        self._init_transformer_weights()
        if self.as_two_stage:
            nn.init.xavier_uniform_(self.memory_trans_fc.weight)
            nn.init.xavier_uniform_(self.pos_trans_fc.weight)
        else:
            xavier_init(self.reference_points_fc, distribution='uniform', bias=0.)
        normal_(self.level_embed)

    def pre_transformer(self, mlvl_feats: Tuple[Tensor],
                        batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        """Flatten the levels into one (B, sum H_l * W_l, C) sequence with level
        embeddings added to the positions."""
        batch_size = mlvl_feats[0].size(0)
        masks = padding_masks(batch_data_samples, mlvl_feats[0])
        if masks is None:
            mlvl_masks = [None] * len(mlvl_feats)
            mlvl_pos_embeds = [self.positional_encoding(None, input=feat) for feat in mlvl_feats]
        else:
            mlvl_masks = [resize_mask(masks, feat) for feat in mlvl_feats]
            mlvl_pos_embeds = [self.positional_encoding(mask) for mask in mlvl_masks]
        feat_flatten, lvl_pos_embed_flatten, mask_flatten = [], [], []
        for lvl, (feat, mask, pos_embed) in enumerate(zip(mlvl_feats, mlvl_masks,
                                                          mlvl_pos_embeds)):
            c = feat.shape[1]
            feat_flatten.append(feat.view(batch_size, c, -1).permute(0, 2, 1))
            pos_embed = pos_embed.view(batch_size, c, -1).permute(0, 2, 1)
            lvl_pos_embed_flatten.append(pos_embed + self.level_embed[lvl].view(1, 1, -1))
            mask_flatten.append(None if mask is None else mask.flatten(1))
        feat_flatten = torch.cat(feat_flatten, 1)
        lvl_pos_embed_flatten = torch.cat(lvl_pos_embed_flatten, 1)
        mask_flatten = None if masks is None else torch.cat(mask_flatten, 1)
        spatial_shapes = torch.tensor([feat.shape[-2:] for feat in mlvl_feats],
                                      dtype=torch.long, device=feat_flatten.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros((1, )),
                                       spatial_shapes.prod(1).cumsum(0)[:-1]))
        if masks is not None:
            valid_ratios = torch.stack([self.get_valid_ratio(m) for m in mlvl_masks], 1)
        else:
            valid_ratios = mlvl_feats[0].new_ones(batch_size, len(mlvl_feats), 2)
        encoder_inputs_dict = dict(feat=feat_flatten, feat_mask=mask_flatten,
                                   feat_pos=lvl_pos_embed_flatten, spatial_shapes=spatial_shapes,
                                   level_start_index=level_start_index, valid_ratios=valid_ratios)
        decoder_inputs_dict = dict(memory_mask=mask_flatten, spatial_shapes=spatial_shapes,
                                   level_start_index=level_start_index, valid_ratios=valid_ratios)
        return encoder_inputs_dict, decoder_inputs_dict

    def forward_encoder(self, feat: Tensor, feat_mask: Tensor, feat_pos: Tensor,
                        spatial_shapes: Tensor, level_start_index: Tensor,
                        valid_ratios: Tensor) -> Dict:
        memory = self.encoder(query=feat, query_pos=feat_pos, key_padding_mask=feat_mask,
                              spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                              valid_ratios=valid_ratios)
        return dict(memory=memory, memory_mask=feat_mask, spatial_shapes=spatial_shapes)

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor,
                    spatial_shapes: Tensor) -> Tuple[Dict, Dict]:
        """Queries and references: learned, or (two-stage) the top-scoring
        encoder proposals."""
        batch_size, _, c = memory.shape
        if self.as_two_stage:
            output_memory, output_proposals = self.gen_encoder_output_proposals(
                memory, memory_mask, spatial_shapes)
            enc_outputs_class = self.bbox_head.cls_branches[self.decoder.num_layers](
                output_memory)
            enc_outputs_coord_unact = self.bbox_head.reg_branches[self.decoder.num_layers](
                output_memory) + output_proposals
            enc_outputs_coord = enc_outputs_coord_unact.sigmoid()
            topk_proposals = torch.topk(enc_outputs_class[..., 0], self.num_queries, dim=1)[1]
            topk_coords_unact = torch.gather(enc_outputs_coord_unact, 1,
                                             topk_proposals.unsqueeze(-1).repeat(1, 1, 4))
            topk_coords_unact = topk_coords_unact.detach()
            reference_points = topk_coords_unact.sigmoid()
            pos_trans_out = self.pos_trans_norm(
                self.pos_trans_fc(self.get_proposal_pos_embed(topk_coords_unact)))
            query_pos, query = torch.split(pos_trans_out, c, dim=2)
        else:
            enc_outputs_class, enc_outputs_coord = None, None
            query_pos, query = torch.split(self.query_embedding.weight, c, dim=1)
            query_pos = query_pos.unsqueeze(0).expand(batch_size, -1, -1)
            query = query.unsqueeze(0).expand(batch_size, -1, -1)
            reference_points = self.reference_points_fc(query_pos).sigmoid()
        decoder_inputs_dict = dict(query=query, query_pos=query_pos, memory=memory,
                                   reference_points=reference_points)
        head_inputs_dict = dict(enc_outputs_class=enc_outputs_class,
                                enc_outputs_coord=enc_outputs_coord) if self.training else {}
        return decoder_inputs_dict, head_inputs_dict

    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        memory_mask: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                        level_start_index: Tensor, valid_ratios: Tensor) -> Dict:
        inter_states, inter_references = self.decoder(
            query=query, value=memory, query_pos=query_pos, key_padding_mask=memory_mask,
            reference_points=reference_points, spatial_shapes=spatial_shapes,
            level_start_index=level_start_index, valid_ratios=valid_ratios,
            reg_branches=self.bbox_head.reg_branches if self.with_box_refine else None)
        return dict(hidden_states=inter_states, references=[reference_points, *inter_references])

    @staticmethod
    def get_valid_ratio(mask: Tensor) -> Tensor:
        """(B, H, W) padding mask -> (B, 2) unpadded fraction ``w, h``."""
        _, height, width = mask.shape
        valid_h = torch.sum(~mask[:, :, 0], 1)
        valid_w = torch.sum(~mask[:, 0, :], 1)
        return torch.stack([valid_w.float() / width, valid_h.float() / height], -1)

    def gen_encoder_output_proposals(self, memory: Tensor, memory_mask: Optional[Tensor],
                                     spatial_shapes: Tensor) -> Tuple[Tensor, Tensor]:
        """One proposal per encoder token: its pixel centre, with a size of
        0.05 * 2^level, in logit space (inf where invalid or padded); and the
        memory with those tokens zeroed, through ``memory_trans_fc/norm``."""
        bs = memory.size(0)
        proposals = []
        _cur = 0
        for lvl, (height, width) in enumerate(spatial_shapes.tolist()):
            if memory_mask is not None:
                mask_flatten_ = memory_mask[:, _cur:_cur + height * width].view(
                    bs, height, width, 1)
                valid_h = torch.sum(~mask_flatten_[:, :, 0, 0], 1).unsqueeze(-1)
                valid_w = torch.sum(~mask_flatten_[:, 0, :, 0], 1).unsqueeze(-1)
                scale = torch.cat([valid_w, valid_h], 1).view(bs, 1, 1, 2)
            else:
                scale = memory.new_tensor([width, height]).view(1, 1, 1, 2)
            grid_y, grid_x = torch.meshgrid(
                torch.linspace(0, height - 1, height, dtype=torch.float32, device=memory.device),
                torch.linspace(0, width - 1, width, dtype=torch.float32, device=memory.device),
                indexing='ij')
            grid = torch.cat([grid_x.unsqueeze(-1), grid_y.unsqueeze(-1)], -1)
            grid = (grid.unsqueeze(0).expand(bs, -1, -1, -1) + 0.5) / scale
            wh = torch.ones_like(grid) * 0.05 * (2.0**lvl)
            proposals.append(torch.cat((grid, wh), -1).view(bs, -1, 4))
            _cur += height * width
        output_proposals = torch.cat(proposals, 1)
        output_proposals_valid = ((output_proposals > 0.01) & (output_proposals < 0.99)).sum(
            -1, keepdim=True) == output_proposals.shape[-1]
        output_proposals = torch.log(output_proposals / (1 - output_proposals))
        output_memory = memory
        if memory_mask is not None:
            output_proposals = output_proposals.masked_fill(memory_mask.unsqueeze(-1),
                                                            float('inf'))
            output_memory = output_memory.masked_fill(memory_mask.unsqueeze(-1), float(0))
        output_proposals = output_proposals.masked_fill(~output_proposals_valid, float('inf'))
        output_memory = output_memory.masked_fill(~output_proposals_valid, float(0))
        output_memory = self.memory_trans_norm(self.memory_trans_fc(output_memory))
        return output_memory, output_proposals

    @staticmethod
    def get_proposal_pos_embed(proposals: Tensor, num_pos_feats: int = 128,
                               temperature: int = 10000) -> Tensor:
        """(B, N, 4) unsigmoided boxes -> (B, N, 4 * num_pos_feats) sine encoding."""
        scale = 2 * math.pi
        dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=proposals.device)
        dim_t = temperature**(2 * (dim_t // 2) / num_pos_feats)
        pos = proposals.sigmoid()[:, :, :, None] * scale / dim_t
        return torch.stack((pos[:, :, :, 0::2].sin(), pos[:, :, :, 1::2].cos()),
                           dim=4).flatten(2)
