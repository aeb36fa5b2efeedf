"""DINO: DETR with Improved deNoising anchOr boxes (Zhang et al., 2023)."""
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.init import normal_

from detlab.registry import MODELS
from detlab.structures import OptSampleList
from ..layers import (CdnQueryGenerator, DeformableDetrTransformerEncoder,
                      DinoTransformerDecoder, SinePositionalEncoding)
from .deformable_detr import DeformableDETR


@MODELS.register_module()
class DINO(DeformableDETR):
    """Two-stage Deformable DETR with box refinement, learned content
    queries, mixed query selection and contrastive denoising training.

    Args:
        dn_cfg (dict): ``CdnQueryGenerator`` arguments other than
            ``num_classes``, ``embed_dims`` and ``num_matching_queries``
            (taken from the head, the encoder and ``num_queries``).
    """

    def __init__(self, *args, dn_cfg: Optional[dict] = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not (self.as_two_stage and self.with_box_refine):
            raise ValueError(f'DINO needs as_two_stage=True and with_box_refine=True, got '
                             f'{self.as_two_stage} and {self.with_box_refine}')
        dn_cfg = {} if dn_cfg is None else dict(dn_cfg)
        set_here = {'num_classes', 'num_queries', 'hidden_dim'} & set(dn_cfg)
        if set_here:
            raise ValueError(f'DINO: dn_cfg must not set {sorted(set_here)}; they come from the '
                             f'head, the encoder and num_queries')
        self.dn_query_generator = CdnQueryGenerator(
            **dn_cfg, num_classes=self.bbox_head.num_classes, embed_dims=self.embed_dims,
            num_matching_queries=self.num_queries)

    def _init_layers(self) -> None:
        self.positional_encoding = SinePositionalEncoding(**self.positional_encoding)
        self.encoder = DeformableDetrTransformerEncoder(**self.encoder)
        self.decoder = DinoTransformerDecoder(**self.decoder)
        self.embed_dims = self.encoder.embed_dims
        self.query_embedding = nn.Embedding(self.num_queries, self.embed_dims)
        self._check_num_feats()
        self.level_embed = nn.Parameter(torch.Tensor(self.num_feature_levels, self.embed_dims))
        self.memory_trans_fc = nn.Linear(self.embed_dims, self.embed_dims)
        self.memory_trans_norm = nn.LayerNorm(self.embed_dims)

    def init_weights(self) -> None:
        super(DeformableDETR, self).init_weights()
        self._init_transformer_weights()
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        nn.init.xavier_uniform_(self.query_embedding.weight)
        normal_(self.level_embed)

    def forward_transformer(self, img_feats: Tuple[Tensor],
                            batch_data_samples: OptSampleList = None) -> Dict:
        encoder_inputs_dict, decoder_inputs_dict = self.pre_transformer(img_feats,
                                                                        batch_data_samples)
        encoder_outputs_dict = self.forward_encoder(**encoder_inputs_dict)
        tmp_dec_in, head_inputs_dict = self.pre_decoder(**encoder_outputs_dict,
                                                        batch_data_samples=batch_data_samples)
        decoder_inputs_dict.update(tmp_dec_in)
        head_inputs_dict.update(self.forward_decoder(**decoder_inputs_dict))
        return head_inputs_dict

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor, spatial_shapes: Tensor,
                    batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        """The ``num_queries`` best encoder proposals become the references
        (content queries stay learned); in training the denoising queries go
        first."""
        bs = memory.shape[0]
        cls_out_features = self.bbox_head.cls_branches[self.decoder.num_layers].out_features
        output_memory, output_proposals = self.gen_encoder_output_proposals(
            memory, memory_mask, spatial_shapes)
        enc_outputs_class = self.bbox_head.cls_branches[self.decoder.num_layers](output_memory)
        enc_outputs_coord_unact = self.bbox_head.reg_branches[self.decoder.num_layers](
            output_memory) + output_proposals
        topk_indices = torch.topk(enc_outputs_class.max(-1)[0], k=self.num_queries, dim=1)[1]
        topk_score = torch.gather(enc_outputs_class, 1,
                                  topk_indices.unsqueeze(-1).repeat(1, 1, cls_out_features))
        topk_coords_unact = torch.gather(enc_outputs_coord_unact, 1,
                                         topk_indices.unsqueeze(-1).repeat(1, 1, 4))
        topk_coords = topk_coords_unact.sigmoid()
        topk_coords_unact = topk_coords_unact.detach()
        query = self.query_embedding.weight[:, None, :].repeat(1, bs, 1).transpose(0, 1)
        if self.training:
            dn_label_query, dn_bbox_query, dn_mask, dn_meta = self.dn_query_generator(
                batch_data_samples)
            query = torch.cat([dn_label_query, query], dim=1)
            reference_points = torch.cat([dn_bbox_query, topk_coords_unact], dim=1)
        else:
            reference_points = topk_coords_unact
            dn_mask, dn_meta = None, None
        decoder_inputs_dict = dict(query=query, memory=memory,
                                   reference_points=reference_points.sigmoid(), dn_mask=dn_mask)
        head_inputs_dict = dict(enc_outputs_class=topk_score, enc_outputs_coord=topk_coords,
                                dn_meta=dn_meta) if self.training else {}
        return decoder_inputs_dict, head_inputs_dict

    def forward_decoder(self, query: Tensor, memory: Tensor, memory_mask: Tensor,
                        reference_points: Tensor, spatial_shapes: Tensor,
                        level_start_index: Tensor, valid_ratios: Tensor,
                        dn_mask: Optional[Tensor] = None, **kwargs) -> Dict:
        inter_states, references = self.decoder(
            query=query, value=memory, key_padding_mask=memory_mask, self_attn_mask=dn_mask,
            reference_points=reference_points, spatial_shapes=spatial_shapes,
            level_start_index=level_start_index, valid_ratios=valid_ratios,
            reg_branches=self.bbox_head.reg_branches, **kwargs)
        if len(query) == self.num_queries:
            # Keeps the label embedding in the graph when no denoising queries
            # were added, as MMDetection does (distributed training needs every
            # parameter to receive a gradient).
            inter_states[0] += self.dn_query_generator.label_embedding.weight[0, 0] * 0.0
        return dict(hidden_states=inter_states, references=list(references))
