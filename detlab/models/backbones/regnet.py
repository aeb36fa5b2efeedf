"""RegNet backbone (Radosavovic et al., 2020) with MMDetection's arch names and keys."""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.cnn import build_conv_layer, build_norm_layer
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures.errors import AssertionKeyError, AssertionTypeError, AssertionValueError
from ..layers.activation import build_activation
from .resnet import ResNet
from .resnext import Bottleneck as ResNeXtBottleneck

#: Keys of a RegNet ``arch`` dict: initial width, width slope, width multiplier
#: (quantization), number of blocks, channels per group and bottleneck ratio.
ARCH_KEYS = ('w0', 'wa', 'wm', 'depth', 'group_w', 'bot_mul')
#: Stage widths are rounded to multiples of this.
WIDTH_DIVISOR = 8
MAX_STAGES = 4


class RegNetBottleneck(ResNeXtBottleneck):
    """ResNeXt's bottleneck without expansion: the block outputs ``planes`` channels.

    State_dict keys are ResNeXt's (``conv1..3``, ``bn1..3``), as in MMDetection,
    which builds RegNet's blocks from ResNeXt's Bottleneck with ``expansion = 1``.
    """

    expansion = 1


@MODELS.register_module()
class RegNet(ResNet):
    """RegNetX as a detection backbone, with MMDetection 3.3's config and state_dict keys.

    The stem is one 3x3 stride-2 conv (``conv1``/``bn1``, no max pool); each
    stage is ``layer{i}`` of ResNeXt bottlenecks without expansion.

    Args:
        arch (str | dict): One of ``arch_settings`` (``'regnetx_400mf'`` ..
            ``'regnetx_12gf'``) or a dict with keys ``w0, wa, wm, depth,
            group_w, bot_mul`` (see :func:`regnet_stages`).
        in_channels (int): Image channels. Defaults to 3.
        stem_channels (int): Stem width. Defaults to 32.
        base_channels (int): Kept for MMDetection's signature; stage widths
            come from ``arch``. Defaults to 32.
        strides (Sequence[int]): Stride of each stage. Defaults to (2, 2, 2, 2).
        dilations (Sequence[int]): Dilation of each stage.
        out_indices (Sequence[int]): Stages whose outputs ``forward`` returns.
        deep_stem (bool): Must stay False (RegNet's stem is fixed).
        Others: as :class:`ResNet` (style, avg_down, frozen_stages, conv_cfg,
            norm_cfg, norm_eval, dcn, stage_with_dcn, plugins, with_cp,
            zero_init_residual, pretrained, init_cfg, act_cfg).

    Example:
        >>> feats = RegNet('regnetx_3.2gf').eval()(torch.rand(1, 3, 32, 32))
        >>> [tuple(f.shape) for f in feats]
        [(1, 96, 8, 8), (1, 192, 4, 4), (1, 432, 2, 2), (1, 1008, 1, 1)]
    """

    arch_settings = {
        'regnetx_400mf': dict(w0=24, wa=24.48, wm=2.54, group_w=16, depth=22, bot_mul=1.0),
        'regnetx_800mf': dict(w0=56, wa=35.73, wm=2.28, group_w=16, depth=16, bot_mul=1.0),
        'regnetx_1.6gf': dict(w0=80, wa=34.01, wm=2.25, group_w=24, depth=18, bot_mul=1.0),
        'regnetx_3.2gf': dict(w0=88, wa=26.31, wm=2.25, group_w=48, depth=25, bot_mul=1.0),
        'regnetx_4.0gf': dict(w0=96, wa=38.65, wm=2.43, group_w=40, depth=23, bot_mul=1.0),
        'regnetx_6.4gf': dict(w0=184, wa=60.83, wm=2.07, group_w=56, depth=17, bot_mul=1.0),
        'regnetx_8.0gf': dict(w0=80, wa=49.56, wm=2.88, group_w=120, depth=23, bot_mul=1.0),
        'regnetx_12gf': dict(w0=168, wa=73.36, wm=2.37, group_w=112, depth=19, bot_mul=1.0),
    }

    def __init__(self,
                 arch: Union[str, dict],
                 in_channels: int = 3,
                 stem_channels: int = 32,
                 base_channels: int = 32,
                 strides: Sequence[int] = (2, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 dcn: Optional[dict] = None,
                 stage_with_dcn: Sequence[bool] = (False, False, False, False),
                 plugins: Optional[List[dict]] = None,
                 with_cp: bool = False,
                 zero_init_residual: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None,
                 act_cfg: dict = dict(type='ReLU')) -> None:
        if isinstance(arch, str):
            if arch not in self.arch_settings:
                raise AssertionKeyError(f'RegNet: unknown arch {arch!r}; use one of '
                                        f'{sorted(self.arch_settings)} or a dict with keys '
                                        f'{list(ARCH_KEYS)}')
            arch = self.arch_settings[arch]
        elif not isinstance(arch, dict):
            raise AssertionTypeError('RegNet: arch must be a str or a dict, got '
                                     f'{type(arch).__name__}')
        if deep_stem:
            raise AssertionValueError('RegNet: deep_stem=True is not available; RegNet has its own '
                                      'stem (one 3x3 stride-2 conv)')
        self.stage_widths, self.group_widths, self._stage_blocks = regnet_stages(arch)
        if len(self.stage_widths) > MAX_STAGES:
            raise AssertionValueError(f'RegNet: arch {arch!r} gives {len(self.stage_widths)} '
                                      f'stages (widths {self.stage_widths}); at most '
                                      f'{MAX_STAGES} are allowed')
        self.bottleneck_ratio = [arch['bot_mul']] * len(self.stage_widths)
        super().__init__(depth=sum(self._stage_blocks), in_channels=in_channels,
                         stem_channels=stem_channels, base_channels=base_channels,
                         num_stages=len(self.stage_widths), strides=strides,
                         dilations=dilations, out_indices=out_indices, style=style,
                         avg_down=avg_down, frozen_stages=frozen_stages, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, norm_eval=norm_eval, dcn=dcn,
                         stage_with_dcn=stage_with_dcn, plugins=plugins, with_cp=with_cp,
                         zero_init_residual=zero_init_residual, pretrained=pretrained,
                         init_cfg=init_cfg, act_cfg=act_cfg)

    @staticmethod
    def generate_regnet(initial_width: int, width_slope: float, width_parameter: float,
                        depth: int, divisor: int = WIDTH_DIVISOR) -> Tuple[List[int], int]:
        """Per-block widths of the quantized linear rule, and the number of distinct widths.

        ``w_j = w0 * wm**round(log_wm(u_j / w0))`` with ``u_j = w0 + wa * j``,
        rounded to a multiple of ``divisor``. Computed with numpy, as
        MMDetection does, so the rounding (half to even) is the same.
        """
        widths_cont = np.arange(depth) * width_slope + initial_width
        exponents = np.round(np.log(widths_cont / initial_width) / np.log(width_parameter))
        widths = np.round(initial_width * np.power(width_parameter, exponents) / divisor) * divisor
        return widths.astype(int).tolist(), len(np.unique(widths))

    @staticmethod
    def quantize_float(number: float, divisor: int) -> int:
        """The multiple of ``divisor`` nearest to ``number``."""
        return int(round(number / divisor) * divisor)

    @staticmethod
    def adjust_width_group(widths: List[int], bottleneck_ratio: List[float],
                           groups: List[int]) -> Tuple[List[int], List[int]]:
        """Cap each group width by its bottleneck width and round the bottleneck width to a
        multiple of it; returns the adjusted (stage widths, group widths)."""
        bottleneck_widths = [int(w * b) for w, b in zip(widths, bottleneck_ratio)]
        groups = [min(g, w) for g, w in zip(groups, bottleneck_widths)]
        bottleneck_widths = [RegNet.quantize_float(w, g) for w, g in zip(bottleneck_widths, groups)]
        widths = [int(w / b) for w, b in zip(bottleneck_widths, bottleneck_ratio)]
        return widths, groups

    @staticmethod
    def get_stages_from_blocks(widths: List[int]) -> Tuple[List[int], List[int]]:
        """Consecutive blocks of one width form a stage: (stage widths, blocks per stage)."""
        stage_widths, stage_blocks = [], []
        for width in widths:
            if stage_widths and stage_widths[-1] == width:
                stage_blocks[-1] += 1
            else:
                stage_widths.append(width)
                stage_blocks.append(1)
        return stage_widths, stage_blocks

    def _arch(self, depth: int) -> Tuple[type, Sequence[int]]:
        return RegNetBottleneck, self._stage_blocks

    def _stage_planes(self, stage: int) -> int:
        return self.stage_widths[stage]

    def _stage_block_args(self, stage: int) -> dict:
        """Groups of the 3x3 conv: bottleneck width / group width."""
        group_width = self.group_widths[stage]
        width = int(round(self.stage_widths[stage] * self.bottleneck_ratio[stage]))
        return dict(groups=width // group_width, base_width=group_width,
                    base_channels=self.stage_widths[stage])

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels, kernel_size=3,
                                      stride=2, padding=1, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = build_activation(self.act_cfg)

    def _stem(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, stem_channels, H / 2, W / 2)."""
        return self.relu(self.norm1(self.conv1(x)))


def regnet_stages(arch: dict, owner: str = 'RegNet') -> Tuple[List[int], List[int], List[int]]:
    """(stage widths, group widths, blocks per stage) of a RegNet ``arch`` dict.

    Raises:
        ValueError: A missing key or a value outside the rule's domain.
    """
    missing = [key for key in ARCH_KEYS if key not in arch]
    if missing:
        raise AssertionValueError(f'{owner}: arch dict {arch!r} lacks {missing}; it needs all '
                                  f'of {list(ARCH_KEYS)}')
    w0, wa, wm = arch['w0'], arch['wa'], arch['wm']
    if not (w0 > 0 and w0 % WIDTH_DIVISOR == 0 and wa >= 0 and wm > 1 and arch['depth'] >= 1):
        raise AssertionValueError(f'{owner}: arch {arch!r} needs w0 > 0 and a multiple of '
                                  f'{WIDTH_DIVISOR}, wa >= 0, wm > 1 and depth >= 1')
    widths, num_stages = RegNet.generate_regnet(w0, wa, wm, arch['depth'])
    stage_widths, stage_blocks = RegNet.get_stages_from_blocks(widths)
    stage_widths, group_widths = RegNet.adjust_width_group(
        stage_widths, [arch['bot_mul']] * num_stages, [arch['group_w']] * num_stages)
    return stage_widths, group_widths, stage_blocks
