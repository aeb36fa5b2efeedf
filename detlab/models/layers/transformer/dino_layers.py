"""DINO's decoder and its contrastive denoising (CDN) query generator."""
import warnings
from typing import Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.structures import SampleList
from detlab.structures.bbox import bbox_xyxy_to_cxcywh
from .deformable_detr_layers import DeformableDetrTransformerDecoder, scale_by_valid_ratios
from .utils import MLP, coordinate_to_encoding, inverse_sigmoid


class DinoTransformerDecoder(DeformableDetrTransformerDecoder):
    """Deformable decoder whose query positions come from the current boxes
    (``ref_point_head``) and whose outputs pass a shared LayerNorm (``norm``)."""

    def _init_layers(self) -> None:
        super()._init_layers()
        self.ref_point_head = MLP(self.embed_dims * 2, self.embed_dims, self.embed_dims, 2)
        self.norm = nn.LayerNorm(self.embed_dims)

    def forward(self, query: Tensor, value: Tensor, key_padding_mask: Tensor,
                self_attn_mask: Tensor, reference_points: Tensor, spatial_shapes: Tensor,
                level_start_index: Tensor, valid_ratios: Tensor, reg_branches: nn.ModuleList,
                **kwargs) -> Tuple[Tensor, Tensor]:
        """Returns (num_layers, B, Q, C) normed states and (num_layers + 1, B,
        Q, 4) references: the initial boxes, then each layer's refined ones."""
        if reference_points.shape[-1] != 4:
            raise ValueError(f'DinoTransformerDecoder: reference_points must be boxes '
                             f'(..., 4), got shape {tuple(reference_points.shape)}')
        intermediate, intermediate_reference_points = [], [reference_points]
        for lid, layer in enumerate(self.layers):
            reference_points_input = scale_by_valid_ratios(reference_points, valid_ratios)
            # embed_dims // 2 features per coordinate: MMDetection's fixed 128
            # at its 256 channels, and narrower models work too.
            query_sine_embed = coordinate_to_encoding(reference_points_input[:, :, 0],
                                                      num_feats=self.embed_dims // 2)
            query_pos = self.ref_point_head(query_sine_embed)
            query = layer(query, query_pos=query_pos, value=value,
                          key_padding_mask=key_padding_mask, self_attn_mask=self_attn_mask,
                          spatial_shapes=spatial_shapes, level_start_index=level_start_index,
                          valid_ratios=valid_ratios, reference_points=reference_points_input,
                          **kwargs)
            new_reference_points = reference_points
            if reg_branches is not None:
                new_reference_points = (reg_branches[lid](query) +
                                        inverse_sigmoid(reference_points, eps=1e-3)).sigmoid()
                reference_points = new_reference_points.detach()
            if self.return_intermediate:
                intermediate.append(self.norm(query))
                intermediate_reference_points.append(new_reference_points)
        if self.return_intermediate:
            return torch.stack(intermediate), torch.stack(intermediate_reference_points)
        return query, reference_points


class CdnQueryGenerator(BaseModule):
    """Noised copies of the ground truth as extra decoder queries (DINO).

    Each group holds every gt twice: a positive copy (box jittered by less
    than half its size) and a negative copy (jittered by between one half and
    one size); labels are flipped to a random class with probability
    ``label_noise_scale / 2``. Queries are laid out ``[group 0: positives,
    negatives | group 1: ... ]``, each part ``max_num_target`` long, and the
    attention mask keeps groups and the matching queries from seeing each other.

    Args:
        num_classes (int): Classes of the label embedding.
        embed_dims (int): Query channels.
        num_matching_queries (int): Ordinary (matching) queries after the
            denoising ones.
        label_noise_scale (float): Twice the label flip probability.
        box_noise_scale (float): Scale of the box jitter.
        group_cfg (dict, optional): ``dynamic=True`` with ``num_dn_queries``
            (groups = num_dn_queries // most gts in an image), or
            ``dynamic=False`` with ``num_groups``.
    """

    def __init__(self, num_classes: int, embed_dims: int, num_matching_queries: int,
                 label_noise_scale: float = 0.5, box_noise_scale: float = 1.0,
                 group_cfg: Optional[dict] = None) -> None:
        super().__init__()
        if label_noise_scale <= 0 or box_noise_scale <= 0:
            raise ValueError(f'CdnQueryGenerator: label_noise_scale and box_noise_scale must be '
                             f'positive, got {label_noise_scale} and {box_noise_scale}')
        self.num_classes = num_classes
        self.embed_dims = embed_dims
        self.num_matching_queries = num_matching_queries
        self.label_noise_scale = label_noise_scale
        self.box_noise_scale = box_noise_scale
        group_cfg = {} if group_cfg is None else group_cfg
        self.dynamic_dn_groups = group_cfg.get('dynamic', True)
        if self.dynamic_dn_groups:
            if 'num_dn_queries' not in group_cfg:
                warnings.warn("CdnQueryGenerator: group_cfg has no 'num_dn_queries' for dynamic "
                              "groups; using 100")
            self.num_dn_queries = group_cfg.get('num_dn_queries', 100)
            if not isinstance(self.num_dn_queries, int):
                raise TypeError(f'CdnQueryGenerator: group_cfg.num_dn_queries must be an int, '
                                f'got {self.num_dn_queries!r}')
        else:
            if not isinstance(group_cfg.get('num_groups'), int):
                raise TypeError(f'CdnQueryGenerator: static groups (dynamic=False) need an int '
                                f'group_cfg.num_groups, got {group_cfg.get("num_groups")!r}')
            self.num_groups = group_cfg['num_groups']
        self.label_embedding = nn.Embedding(self.num_classes, self.embed_dims)

    def __call__(self, batch_data_samples: SampleList) -> tuple:
        """Denoising queries of a batch.

        Returns:
            tuple: (B, D, embed_dims) label queries, (B, D, 4) unsigmoided
            ``cx, cy, w, h`` box queries, the (D + matching, D + matching) bool
            attention mask (True = may not attend) and ``dn_meta``
            (``num_denoising_queries`` D, ``num_denoising_groups``).
        """
        gt_labels_list, gt_bboxes_list = [], []
        for sample in batch_data_samples:
            img_h, img_w = sample.img_shape
            bboxes = sample.gt_instances.bboxes
            factor = bboxes.new_tensor([img_w, img_h, img_w, img_h]).unsqueeze(0)
            gt_bboxes_list.append(bboxes / factor)
            gt_labels_list.append(sample.gt_instances.labels)
        gt_labels = torch.cat(gt_labels_list)
        gt_bboxes = torch.cat(gt_bboxes_list)
        num_target_list = [len(bboxes) for bboxes in gt_bboxes_list]
        max_num_target = max(num_target_list)
        num_groups = self.get_num_groups(max_num_target)
        dn_label_query = self.generate_dn_label_query(gt_labels, num_groups)
        dn_bbox_query = self.generate_dn_bbox_query(gt_bboxes, num_groups)
        batch_idx = torch.cat([torch.full_like(t.long(), i) for i, t in enumerate(gt_labels_list)])
        dn_label_query, dn_bbox_query = self.collate_dn_queries(
            dn_label_query, dn_bbox_query, batch_idx, num_target_list, num_groups)
        attn_mask = self.generate_dn_mask(max_num_target, num_groups,
                                          device=dn_label_query.device)
        dn_meta = dict(num_denoising_queries=int(max_num_target * 2 * num_groups),
                       num_denoising_groups=num_groups)
        return dn_label_query, dn_bbox_query, attn_mask, dn_meta

    def get_num_groups(self, max_num_target: Optional[int] = None) -> int:
        if self.dynamic_dn_groups:
            num_groups = 1 if not max_num_target else self.num_dn_queries // max_num_target
        else:
            num_groups = self.num_groups
        return int(max(num_groups, 1))

    def generate_dn_label_query(self, gt_labels: Tensor, num_groups: int) -> Tensor:
        """(G,) labels -> (2 * groups * G, embed_dims) embeddings of noised labels."""
        gt_labels_expand = gt_labels.repeat(2 * num_groups, 1).view(-1)
        p = torch.rand_like(gt_labels_expand.float())
        chosen_indice = torch.nonzero(p < self.label_noise_scale * 0.5).view(-1)
        new_labels = torch.randint_like(chosen_indice, 0, self.num_classes)
        noisy_labels_expand = gt_labels_expand.scatter(0, chosen_indice, new_labels)
        return self.label_embedding(noisy_labels_expand)

    def generate_dn_bbox_query(self, gt_bboxes: Tensor, num_groups: int) -> Tensor:
        """(G, 4) normalised ``x1, y1, x2, y2`` -> (2 * groups * G, 4) noised
        boxes as unsigmoided ``cx, cy, w, h``."""
        device = gt_bboxes.device
        num_gts = len(gt_bboxes)
        gt_bboxes_expand = gt_bboxes.repeat(2 * num_groups, 1)
        positive_idx = torch.arange(num_gts, dtype=torch.long, device=device).repeat(num_groups, 1)
        positive_idx += 2 * num_gts * torch.arange(num_groups, dtype=torch.long,
                                                   device=device)[:, None]
        negative_idx = positive_idx.flatten() + num_gts
        rand_sign = torch.randint_like(gt_bboxes_expand, low=0, high=2,
                                       dtype=torch.float32) * 2.0 - 1.0
        rand_part = torch.rand_like(gt_bboxes_expand)
        rand_part[negative_idx] += 1.0
        rand_part *= rand_sign
        bboxes_whwh = bbox_xyxy_to_cxcywh(gt_bboxes_expand)[:, 2:].repeat(1, 2)
        noisy_bboxes_expand = gt_bboxes_expand + torch.mul(
            rand_part, bboxes_whwh) * self.box_noise_scale / 2
        noisy_bboxes_expand = bbox_xyxy_to_cxcywh(noisy_bboxes_expand.clamp(min=0.0, max=1.0))
        return inverse_sigmoid(noisy_bboxes_expand, eps=1e-3)

    def collate_dn_queries(self, input_label_query: Tensor, input_bbox_query: Tensor,
                           batch_idx: Tensor, num_target_list: list,
                           num_groups: int) -> Tuple[Tensor, Tensor]:
        """Scatter the concatenated queries of all images into (B, D, ...)
        batches, each part padded to ``max_num_target`` (zeros)."""
        device = input_label_query.device
        batch_size = len(num_target_list)
        max_num_target = max(num_target_list)
        num_denoising_queries = int(max_num_target * 2 * num_groups)
        map_query_index = torch.cat([torch.arange(n, device=device) for n in num_target_list])
        map_query_index = torch.cat([map_query_index + max_num_target * i
                                     for i in range(2 * num_groups)]).long()
        batch_idx_expand = batch_idx.repeat(2 * num_groups, 1).view(-1)
        mapper = (batch_idx_expand, map_query_index)
        batched_label_query = torch.zeros(batch_size, num_denoising_queries, self.embed_dims,
                                          device=device)
        batched_bbox_query = torch.zeros(batch_size, num_denoising_queries, 4, device=device)
        batched_label_query[mapper] = input_label_query
        batched_bbox_query[mapper] = input_bbox_query
        return batched_label_query, batched_bbox_query

    def generate_dn_mask(self, max_num_target: int, num_groups: int,
                         device: Union[torch.device, str]) -> Tensor:
        """(D + M, D + M) bool mask, True where a query may not attend: the
        matching queries never see denoising ones, and a group sees only itself."""
        num_denoising_queries = int(max_num_target * 2 * num_groups)
        num_queries_total = num_denoising_queries + self.num_matching_queries
        attn_mask = torch.zeros(num_queries_total, num_queries_total, device=device,
                                dtype=torch.bool)
        attn_mask[num_denoising_queries:, :num_denoising_queries] = True
        group_size = max_num_target * 2
        group = torch.arange(num_denoising_queries, device=device) // max(group_size, 1)
        attn_mask[:num_denoising_queries, :num_denoising_queries] = group[:, None] != group[None]
        return attn_mask
