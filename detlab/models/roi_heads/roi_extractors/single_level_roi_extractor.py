"""SingleRoIExtractor: pool each RoI from the one pyramid level its size maps to (FPN)."""
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from ...utils import gathers_positives


@MODELS.register_module()
class SingleRoIExtractor(BaseModule):
    """RoI features from a feature pyramid, one level per RoI.

    A RoI of scale ``s = sqrt(w * h)`` (image pixels) goes to level
    ``floor(log2(s / finest_scale + 1e-6))``, clamped to the levels given
    (Lin et al., FPN, eq. 1, as MMDetection writes it): with the default 56,
    ``s < 112`` -> level 0, ``112 <= s < 224`` -> 1, ``224 <= s < 448`` -> 2,
    larger -> 3.

    Args:
        roi_layer (dict): Config of the pooling layer, e.g.
            ``dict(type='RoIAlign', output_size=7, sampling_ratio=0)``;
            ``spatial_scale`` is set per level from ``featmap_strides``.
        out_channels (int): Channels of the feature maps (and of the output).
        featmap_strides (list[int]): Stride of each level it reads.
        finest_scale (int): Scale threshold of level 0. Defaults to 56.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 roi_layer: dict,
                 out_channels: int,
                 featmap_strides: List[int],
                 finest_scale: int = 56,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.roi_layers = self.build_roi_layers(roi_layer, featmap_strides)
        self.out_channels = out_channels
        self.featmap_strides = featmap_strides
        self.finest_scale = finest_scale

    @property
    def num_inputs(self) -> int:
        """int: Number of pyramid levels read (the first ``num_inputs`` of the neck's)."""
        return len(self.featmap_strides)

    @staticmethod
    def build_roi_layers(layer_cfg: dict, featmap_strides: Sequence[int]) -> nn.ModuleList:
        """One pooling layer per level, each with ``spatial_scale = 1 / stride``."""
        cfg = dict(layer_cfg)
        layer_type = cfg.pop('type', None)
        if layer_type is None:
            raise KeyError(f'roi_layer needs a type, e.g. RoIAlign; got {dict(layer_cfg)}')
        if not isinstance(layer_type, str):
            return nn.ModuleList(layer_type(spatial_scale=1 / s, **cfg) for s in featmap_strides)
        return nn.ModuleList(
            MODELS.build(dict(cfg, type=layer_type, spatial_scale=1 / s)) for s in featmap_strides)

    @staticmethod
    def roi_rescale(rois: Tensor, scale_factor: float) -> Tensor:
        """Scale each RoI's width and height about its centre.

        Args:
            rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2``.
            scale_factor (float): Factor on width and height.

        Returns:
            Tensor: (K, 5) the scaled RoIs.
        """
        centre_x = (rois[:, 1] + rois[:, 3]) * 0.5
        centre_y = (rois[:, 2] + rois[:, 4]) * 0.5
        half_w = (rois[:, 3] - rois[:, 1]) * scale_factor * 0.5
        half_h = (rois[:, 4] - rois[:, 2]) * scale_factor * 0.5
        return torch.stack((rois[:, 0], centre_x - half_w, centre_y - half_h, centre_x + half_w,
                            centre_y + half_h), dim=-1)

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """The pyramid level of each RoI.

        Args:
            rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2``.
            num_levels (int): Number of levels.

        Returns:
            Tensor: (K,) long level index in ``[0, num_levels - 1]``.
        """
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=num_levels - 1).long()

    def forward(self, feats: Sequence[Tensor], rois: Tensor,
                roi_scale_factor: Optional[float] = None) -> Tensor:
        """Pool every RoI from its level.

        Args:
            feats (Sequence[Tensor]): (B, C, H_l, W_l) per level, finest first.
            rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2`` in image pixels.
            roi_scale_factor (float, optional): Enlarge (or shrink) each RoI
                about its centre after its level is chosen.

        Returns:
            Tensor: (K, C, out_h, out_w) RoI features, in the order of ``rois``.
        """
        rois = rois.type_as(feats[0])
        out_size = self.roi_layers[0].output_size
        if len(feats) == 1:
            if len(rois) == 0:
                return feats[0].new_zeros(0, self.out_channels, *out_size)
            return self.roi_layers[0](feats[0], rois)
        levels = self.map_roi_levels(rois, len(feats))
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        if not gathers_positives(rois):
            return self._pool_on_every_level(feats, rois, levels)
        level_inds = [(levels == level).nonzero(as_tuple=True)[0] for level in range(len(feats))]
        # Every finite RoI has one level, so its row is written below; zeros only when
        # some are left (a RoI with NaN coordinates has no level).
        covered = sum(inds.numel() for inds in level_inds) == rois.size(0)
        new_feats = feats[0].new_empty if covered else feats[0].new_zeros
        roi_feats, unused = None, []
        for level, (feat, inds) in enumerate(zip(feats, level_inds)):
            if inds.numel() == 0:
                unused.append(feat)
            elif inds.numel() == rois.size(0):
                roi_feats = self.roi_layers[level](feat, rois)  # all RoIs, in order
            else:
                if roi_feats is None:
                    roi_feats = new_feats(rois.size(0), self.out_channels, *out_size)
                # index_put_ keeps only the indices for backward; index_copy_ would keep
                # the level's pooled features too (the same values and gradients).
                roi_feats.index_put_((inds, ), self.roi_layers[level](feat, rois[inds]))
        if roi_feats is None:
            roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels, *out_size)
        if unused and torch.is_grad_enabled() and any(feat.requires_grad for feat in unused):
            # Keeps every level in the autograd graph, so that distributed training sees
            # the same parameters used on every rank: one scalar zero, added once.
            roi_feats = roi_feats + sum(feat.sum() for feat in unused) * 0.
        return roi_feats

    def _pool_on_every_level(self, feats: Sequence[Tensor], rois: Tensor,
                             levels: Tensor) -> Tensor:
        """The features of :meth:`forward` without gathering each level's
        RoIs (``nonzero`` would make the host wait for a GPU): every level
        pools all K rows and each RoI keeps its own level's row (zeros for a
        RoI without a level), as MMDetection's ONNX export does. On the other
        levels a RoI is pooled as the empty box (0, 0, 0, 0), which costs
        next to nothing (adaptive sampling takes one point per bin, or none
        with ``aligned``), rather than its whole area there. Backward keeps
        only each level's (K,) mask; the forward pass holds about three
        outputs' worth at once."""
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels,
                                       *self.roi_layers[0].output_size)
        if rois.size(0) == 0:
            return roi_feats + sum(feat.sum() for feat in feats) * 0.
        empty = torch.cat([rois[:, :1], rois.new_zeros(rois.size(0), 4)], dim=1)
        for level, (feat, layer) in enumerate(zip(feats, self.roi_layers)):
            on_level = (levels == level)[:, None]
            pooled = layer(feat, torch.where(on_level, rois, empty))
            roi_feats = torch.where(on_level[:, :, None, None], pooled, roi_feats)
        return roi_feats
