"""AnchorFreeHead: the layers shared by point-based dense heads (FCOS and kin).

One point per feature-map cell (``MlvlPointGenerator``), a tower of
``stacked_convs`` 3x3 convs for classes and one for boxes, then a classifier
and a box regressor. Subclasses add their own outputs, targets and losses;
``loss`` and inference are :class:`BaseDenseHead`'s.
"""
from typing import List, Optional, Sequence, Tuple, Union

from torch import Tensor, nn

from detlab.registry import MODELS, TASK_UTILS
from ..layers.deform_conv import DCN_TYPES
from ..task_modules.prior_generators import MlvlPointGenerator
from ..utils import cls_reg_towers, multi_apply
from .base_dense_head import BaseDenseHead

StrideType = Union[Sequence[int], Sequence[Tuple[int, int]]]
#: What the predictor convs were called before MMDetection v2.0 (e.g.
#: ``fcos_cls``): checkpoints without a version get these renamed on load.
LEGACY_PREDICTOR_SUFFIXES = {'cls': 'conv_cls', 'reg': 'conv_reg', 'centerness': 'conv_centerness'}


@MODELS.register_module()
class AnchorFreeHead(BaseDenseHead):
    """Anchor-free dense head with MMDetection's config keys and layer names
    (``cls_convs.{i}.conv``, ``reg_convs.{i}.conv``, ``conv_cls``, ``conv_reg``).

    Args:
        num_classes (int): Number of foreground classes.
        in_channels (int): Channels of each input level.
        feat_channels (int): Channels of the tower convs. Defaults to 256.
        stacked_convs (int): Convs per tower. Defaults to 4.
        strides (list[int] | list[tuple[int, int]]): Stride of each level.
        dcn_on_last_conv (bool): The last conv of each tower is a DCNv2.
        conv_bias (bool | str): Bias in the tower convs; ``'auto'`` means
            only without a norm layer.
        loss_cls (dict): Classification loss (sigmoid classifiers).
        loss_bbox (dict): Box loss.
        bbox_coder (dict): Box coder. Defaults to ``DistancePointBBoxCoder``.
        conv_cfg (dict, optional): Conv layer config of the towers.
        norm_cfg (dict, optional): Norm layer config of the towers (e.g. GN).
        train_cfg (dict, optional): Training settings of the subclass.
        test_cfg (dict, optional): ``nms_pre``, ``score_thr``, ``nms``,
            ``max_per_img``, ``min_bbox_size``.
        init_cfg (dict): Normal(0, 0.01) convs; the classifier's bias at
            prior probability 0.01.
    """

    _version = 1

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 feat_channels: int = 256,
                 stacked_convs: int = 4,
                 strides: StrideType = (4, 8, 16, 32, 64),
                 dcn_on_last_conv: bool = False,
                 conv_bias: Union[bool, str] = 'auto',
                 loss_cls: dict = dict(
                     type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                 loss_bbox: dict = dict(type='IoULoss', loss_weight=1.0),
                 bbox_coder: dict = dict(type='DistancePointBBoxCoder'),
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = dict(
                     type='Normal', layer='Conv2d', std=0.01,
                     override=dict(type='Normal', name='conv_cls', std=0.01, bias_prob=0.01))
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if not loss_cls.get('use_sigmoid', False):
            raise ValueError(f'{name} supports sigmoid classifiers only; set '
                             f'loss_cls.use_sigmoid=True (got loss_cls={dict(loss_cls)}).')
        if conv_bias != 'auto' and not isinstance(conv_bias, bool):
            raise ValueError(f"{name}: conv_bias must be 'auto', True or False, got {conv_bias!r}")
        self.num_classes = num_classes
        self.use_sigmoid_cls = True
        self.cls_out_channels = num_classes
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.stacked_convs = stacked_convs
        self.strides = strides
        self.dcn_on_last_conv = dcn_on_last_conv
        self.conv_bias = conv_bias
        self.loss_cls = MODELS.build(loss_cls)
        self.loss_bbox = MODELS.build(loss_bbox)
        self.bbox_coder = TASK_UTILS.build(bbox_coder)
        self.prior_generator = MlvlPointGenerator(strides)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self._init_layers()

    def _init_layers(self) -> None:
        # MMDetection's dcn_on_last_conv: the towers' last conv is a DCNv2 (mmcv's
        # ModulatedDeformConv2dPack, keys conv.weight/bias and conv.conv_offset).
        last_conv_cfg = dict(type=DCN_TYPES['DCNv2']) if self.dcn_on_last_conv else None
        self.cls_convs, self.reg_convs = cls_reg_towers(
            self.in_channels, self.feat_channels, self.stacked_convs, self.conv_cfg, self.norm_cfg,
            bias=self.conv_bias, last_conv_cfg=last_conv_cfg)
        self.conv_cls = nn.Conv2d(self.feat_channels, self.cls_out_channels, 3, padding=1)
        self.conv_reg = nn.Conv2d(self.feat_channels, 4, 3, padding=1)

    def forward_single(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """One level: (B, num_classes, H, W) logits and (B, 4, H, W) box encodings."""
        return self.conv_cls(self.cls_convs(x)), self.conv_reg(self.reg_convs(x))

    def forward(self, x: Sequence[Tensor]) -> Tuple[List[Tensor], ...]:
        """Every level: one list per output of ``forward_single``."""
        return multi_apply(self.forward_single, x)

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict,
                              *args, **kwargs) -> None:
        """Rename pre-v2.0 predictor keys (``fcos_cls`` -> ``conv_cls``) in
        checkpoints that carry no version."""
        if local_metadata.get('version') is None:
            for key in [k for k in state_dict if k.startswith(prefix)]:
                child, _, rest = key[len(prefix):].partition('.')
                new_child = next((new for suffix, new in LEGACY_PREDICTOR_SUFFIXES.items()
                                  if child.endswith(suffix)), None)
                if new_child is not None and new_child != child and rest:
                    state_dict[f'{prefix}{new_child}.{rest}'] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)
