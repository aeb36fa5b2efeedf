"""RetinaHead (Lin et al., "Focal Loss for Dense Object Detection", 2017)."""
from typing import Optional, Tuple

from torch import Tensor, nn

from detlab.registry import MODELS
from ..utils import cls_reg_towers
from .anchor_head import AnchorHead


@MODELS.register_module()
class RetinaHead(AnchorHead):
    """Two towers of ``stacked_convs`` 3x3 convs, one for classes, one for boxes.

    State_dict keys match MMDetection's: ``cls_convs.{i}.conv``,
    ``reg_convs.{i}.conv``, ``retina_cls``, ``retina_reg``.

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        stacked_convs (int): Convs in each tower.
        conv_cfg (dict, optional): Conv layer config for the towers.
        norm_cfg (dict, optional): Norm layer config for the towers, e.g.
            ``dict(type='GN', num_groups=16)`` (shared across levels, so not BN).
        anchor_generator (dict): Prior generator config.
        init_cfg (dict): Normal(0, 0.01) convs, classifier bias set to the
            prior probability 0.01 as in the paper.
        **kwargs: The rest of :class:`AnchorHead`'s arguments.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 stacked_convs: int = 4,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 anchor_generator: dict = dict(
                     type='AnchorGenerator', octave_base_scale=4, scales_per_octave=3,
                     ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='retina_cls', std=0.01, bias_prob=0.01)),
                 **kwargs) -> None:
        if not isinstance(stacked_convs, int) or stacked_convs < 0:
            raise ValueError(
                f'RetinaHead stacked_convs must be an int >= 0, got {stacked_convs!r}.')
        self.stacked_convs = stacked_convs
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        super().__init__(num_classes, in_channels, anchor_generator=anchor_generator,
                         init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.cls_convs, self.reg_convs = cls_reg_towers(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg)
        # Without tower convs the predictors see the input levels directly.
        tower_out = self.feat_channels if self.stacked_convs > 0 else self.in_channels
        self.retina_cls = nn.Conv2d(tower_out, self.num_base_priors * self.cls_out_channels, 3,
                                    padding=1)
        self.retina_reg = nn.Conv2d(tower_out, self.num_base_priors * 4, 3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One level: (B, C_in, H, W) -> (B, A*num_classes, H, W), (B, A*4, H, W)."""
        return self.retina_cls(self.cls_convs(x)), self.retina_reg(self.reg_convs(x))
