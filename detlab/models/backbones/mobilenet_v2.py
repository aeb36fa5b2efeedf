"""MobileNetV2 backbone with MMDetection 3.3's config and state_dict keys."""
from typing import Optional, Sequence, Tuple, Union

from mmcv.cnn import ConvModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError
from ..layers.inverted_residual import InvertedResidual
from .base_backbone import FreezableBackbone, backbone_init_cfg

#: Channel counts are rounded to multiples of this.
CHANNEL_DIVISOR = 8
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
#: Output indices: 0..6 the seven stages, 7 the final 1x1 conv (``conv2``).
NUM_OUTPUTS = 8


def make_divisible(value: float, divisor: int, min_value: Optional[int] = None,
                   min_ratio: float = 0.9) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``min_value``,
    default ``divisor``), one step up if that lost more than ``1 - min_ratio`` of it."""
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < min_ratio * value else rounded


@MODELS.register_module()
class MobileNetV2(FreezableBackbone):
    """MobileNetV2 (Sandler et al., 2018) as a detection backbone.

    ``conv1`` (3x3 stride 2), seven stages ``layer1`` .. ``layer7`` of
    :class:`InvertedResidual` blocks, and a final 1x1 ``conv2`` to 1280
    channels (``1280 * widen_factor`` when ``widen_factor > 1``).

    Args:
        widen_factor (float): Channel multiplier. Defaults to 1.0.
        out_indices (Sequence[int]): Outputs among stages 0..6 and ``conv2``
            (7). Defaults to (1, 2, 4, 7).
        frozen_stages (int): -1 freezes nothing; 0 ``conv1``'s parameters; k
            also ``layer1`` .. ``layer{k}`` (up to 7). Defaults to -1.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs (BN, ReLU6).
        norm_eval (bool): Keep BatchNorms in eval mode while training.
            Defaults to False.
        with_cp (bool): Activation checkpointing in the blocks.
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        init_cfg (dict | list[dict], optional): Initialization config; None
            means kaiming convs and constant (1, 0) norms.

    Example:
        >>> feats = MobileNetV2().eval()(torch.rand(1, 3, 64, 64))
        >>> [tuple(f.shape) for f in feats]
        [(1, 24, 16, 16), (1, 32, 8, 8), (1, 96, 4, 4), (1, 1280, 2, 2)]
    """

    #: Per stage: expand ratio, channels, blocks, stride of the first block.
    arch_settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                     [6, 160, 3, 2], [6, 320, 1, 1]]

    def __init__(self,
                 widen_factor: float = 1.,
                 out_indices: Sequence[int] = (1, 2, 4, 7),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='ReLU6'),
                 norm_eval: bool = False,
                 with_cp: bool = False,
                 pretrained: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg)
        if not set(out_indices) <= set(range(NUM_OUTPUTS)):
            raise AssertionValueError(f'MobileNetV2: out_indices must be a subset of '
                                      f'range(0, {NUM_OUTPUTS}), got {tuple(out_indices)}')
        if frozen_stages not in range(-1, NUM_OUTPUTS):
            raise AssertionValueError(f'MobileNetV2: frozen_stages must be in range(-1, '
                                      f'{NUM_OUTPUTS}), got {frozen_stages}')
        self.init_cfg = backbone_init_cfg('MobileNetV2', init_cfg, pretrained)
        self.widen_factor = widen_factor
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.act_cfg = act_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.in_channels = make_divisible(STEM_CHANNELS * widen_factor, CHANNEL_DIVISOR)
        self.conv1 = ConvModule(3, self.in_channels, 3, stride=2, padding=1, **cfg)
        self.layers = []
        for i, (expand_ratio, channels, num_blocks, stride) in enumerate(self.arch_settings):
            out_channels = make_divisible(channels * widen_factor, CHANNEL_DIVISOR)
            self.add_module(f'layer{i + 1}',
                            self.make_layer(out_channels, num_blocks, stride, expand_ratio))
            self.layers.append(f'layer{i + 1}')
        self.out_channel = int(HEAD_CHANNELS * widen_factor) if widen_factor > 1.0 \
            else HEAD_CHANNELS
        self.conv2 = ConvModule(self.in_channels, self.out_channel, 1, **cfg)
        self.layers.append('conv2')

    def make_layer(self, out_channels: int, num_blocks: int, stride: int,
                   expand_ratio: int) -> nn.Sequential:
        """``num_blocks`` InvertedResiduals; only the first has ``stride``."""
        blocks = []
        for i in range(num_blocks):
            blocks.append(
                InvertedResidual(self.in_channels, out_channels,
                                 mid_channels=int(round(self.in_channels * expand_ratio)),
                                 stride=stride if i == 0 else 1,
                                 with_expand_conv=expand_ratio != 1, conv_cfg=self.conv_cfg,
                                 norm_cfg=self.norm_cfg, act_cfg=self.act_cfg,
                                 with_cp=self.with_cp))
            self.in_channels = out_channels
        return nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the maps of ``out_indices`` (stage order)."""
        x = self.conv1(x)
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            for param in self.conv1.parameters():
                param.requires_grad = False
        for i in range(1, self.frozen_stages + 1):
            layer = getattr(self, f'layer{i}')
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False
