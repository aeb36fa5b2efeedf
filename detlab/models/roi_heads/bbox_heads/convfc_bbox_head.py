"""ConvFCBBoxHead and the R-CNN heads named after its layout (Shared2FCBBoxHead, ...)."""
from typing import Optional, Tuple

from mmcv.cnn import ConvModule
from torch import Tensor, nn

from detlab.registry import MODELS
from .bbox_head import BBoxHead


@MODELS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Shared convs and fcs, then separate class and box branches::

                                    /-> cls convs -> cls fcs -> fc_cls
        shared convs -> shared fcs
                                    \\-> reg convs -> reg fcs -> fc_reg

    Module names as MMDetection's (``shared_convs``, ``shared_fcs``,
    ``cls_convs``, ``cls_fcs``, ``reg_convs``, ``reg_fcs``), so its
    checkpoints load. Every fc is followed by a ReLU; the RoI feature is
    flattened before the first fc.

    Args:
        num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs,
            num_reg_convs, num_reg_fcs (int): Layers of each part; branch
            convs need ``num_shared_fcs == 0``.
        conv_out_channels (int): Channels of every 3x3 conv.
        fc_out_channels (int): Width of every fc.
        conv_cfg, norm_cfg (dict, optional): For the convs (ConvModule).
        init_cfg (dict, optional): Defaults to BBoxHead's plus uniform
            Xavier for the fcs of all branches, as MMDetection.
        **kwargs: :class:`BBoxHead` arguments.
    """

    def __init__(self,
                 num_shared_convs: int = 0,
                 num_shared_fcs: int = 0,
                 num_cls_convs: int = 0,
                 num_cls_fcs: int = 0,
                 num_reg_convs: int = 0,
                 num_reg_fcs: int = 0,
                 conv_out_channels: int = 256,
                 fc_out_channels: int = 1024,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        counts = dict(num_shared_convs=num_shared_convs, num_shared_fcs=num_shared_fcs,
                      num_cls_convs=num_cls_convs, num_cls_fcs=num_cls_fcs,
                      num_reg_convs=num_reg_convs, num_reg_fcs=num_reg_fcs)
        if sum(counts.values()) <= 0:
            raise ValueError(f'{type(self).__name__} needs at least one conv or fc layer, got '
                             f'{counts}.')
        if (num_cls_convs > 0 or num_reg_convs > 0) and num_shared_fcs > 0:
            raise ValueError('cls/reg branch convs cannot follow shared fcs; set '
                             f'num_shared_fcs=0 (got {counts}).')
        if not self.with_cls and (num_cls_convs or num_cls_fcs):
            raise ValueError(f'with_cls=False leaves no use for cls layers ({counts}).')
        if not self.with_reg and (num_reg_convs or num_reg_fcs):
            raise ValueError(f'with_reg=False leaves no use for reg layers ({counts}).')
        self.num_shared_convs = num_shared_convs
        self.num_shared_fcs = num_shared_fcs
        self.num_cls_convs = num_cls_convs
        self.num_cls_fcs = num_cls_fcs
        self.num_reg_convs = num_reg_convs
        self.num_reg_fcs = num_reg_fcs
        self.conv_out_channels = conv_out_channels
        self.fc_out_channels = fc_out_channels
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg

        self.shared_convs, self.shared_fcs, self.shared_out_channels = self._add_conv_fc_branch(
            num_shared_convs, num_shared_fcs, self.in_channels, is_shared=True)
        self.cls_convs, self.cls_fcs, self.cls_last_dim = self._add_conv_fc_branch(
            num_cls_convs, num_cls_fcs, self.shared_out_channels)
        self.reg_convs, self.reg_fcs, self.reg_last_dim = self._add_conv_fc_branch(
            num_reg_convs, num_reg_fcs, self.shared_out_channels)
        if num_shared_fcs == 0 and not self.with_avg_pool:
            # The branch ends on a flattened conv map, not an fc.
            if num_cls_fcs == 0:
                self.cls_last_dim *= self.roi_feat_area
            if num_reg_fcs == 0:
                self.reg_last_dim *= self.roi_feat_area
        self.relu = nn.ReLU(inplace=True)
        self._build_predictors(self.cls_last_dim, self.reg_last_dim)
        if init_cfg is None:
            self.init_cfg.append(dict(
                type='Xavier', distribution='uniform',
                override=[dict(name='shared_fcs'), dict(name='cls_fcs'), dict(name='reg_fcs')]))

    def _add_conv_fc_branch(self, num_convs: int, num_fcs: int, in_channels: int,
                            is_shared: bool = False) -> Tuple[nn.ModuleList, nn.ModuleList, int]:
        """convs -> (flatten) -> fcs; returns the convs, the fcs and the output width."""
        last_dim = in_channels
        convs = nn.ModuleList()
        for i in range(num_convs):
            convs.append(ConvModule(last_dim if i == 0 else self.conv_out_channels,
                                    self.conv_out_channels, 3, padding=1,
                                    conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        if num_convs > 0:
            last_dim = self.conv_out_channels
        fcs = nn.ModuleList()
        if num_fcs > 0:
            if (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool:
                last_dim *= self.roi_feat_area
            for i in range(num_fcs):
                fcs.append(nn.Linear(last_dim if i == 0 else self.fc_out_channels,
                                     self.fc_out_channels))
            last_dim = self.fc_out_channels
        return convs, fcs, last_dim

    def _branch(self, x: Tensor, convs: nn.ModuleList, fcs: nn.ModuleList) -> Tensor:
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward(self, x: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """(K, C, h, w) RoI features -> ``cls_score`` (K, num_classes + 1),
        ``bbox_pred`` (K, 4 * num_classes) (or (K, 4) class-agnostic)."""
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            if self.with_avg_pool:
                x = self.avg_pool(x)
            x = x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        cls_score = self.fc_cls(self._branch(x, self.cls_convs, self.cls_fcs)) \
            if self.with_cls else None
        bbox_pred = self.fc_reg(self._branch(x, self.reg_convs, self.reg_fcs)) \
            if self.with_reg else None
        return cls_score, bbox_pred


@MODELS.register_module()
class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Two shared fcs, then ``fc_cls`` and ``fc_reg`` (Faster R-CNN with FPN)."""

    def __init__(self, fc_out_channels: int = 1024, **kwargs) -> None:
        super().__init__(num_shared_convs=0, num_shared_fcs=2, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels,
                         **kwargs)


@MODELS.register_module()
class Shared4Conv1FCBBoxHead(ConvFCBBoxHead):
    """Four shared 3x3 convs and one shared fc (the GN R-CNN heads)."""

    def __init__(self, fc_out_channels: int = 1024, **kwargs) -> None:
        super().__init__(num_shared_convs=4, num_shared_fcs=1, num_cls_convs=0, num_cls_fcs=0,
                         num_reg_convs=0, num_reg_fcs=0, fc_out_channels=fc_out_channels,
                         **kwargs)
