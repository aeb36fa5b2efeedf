"""ResNet backbone with MMDetection 3.x's config keys and state_dict keys."""
from typing import List, Optional, Sequence, Tuple, Union

from mmcv.cnn import build_conv_layer, build_norm_layer
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionKeyError, AssertionValueError
from ..layers import ResLayer
from ..layers.activation import build_activation
from ..layers.plugins import check_plugins, make_stage_plugins
from .base_backbone import FreezableBackbone, backbone_init_cfg
from .resnet_blocks import RESNET_STYLES, BasicBlock, Bottleneck, refuse_dcn

#: Stage widths double at every stage: planes = base_channels * 2 ** stage.
STAGE_WIDTH_GROWTH = 2
#: Stem: a 7x7 stride-2 conv (or three 3x3 convs) then a 3x3 stride-2 max pool.
STEM_KERNEL, STEM_STRIDE, STEM_PADDING = 7, 2, 3
POOL_KERNEL, POOL_STRIDE, POOL_PADDING = 3, 2, 1
MAX_STAGES = 4
#: ``frozen_stages=-1`` freezes nothing; 0 freezes the stem; k also layer1..layer{k}.
NOT_FROZEN = -1
#: Deformable conv types that ``conv_cfg`` may not name (``dcn`` builds DCN/DCNv2).
DEFORMABLE_CONV_TYPES = ('DCN', 'DCNv2', 'DCNv3', 'DeformConv2d', 'ModulatedDeformConv2d',
                         'DeformConv', 'ModulatedDeformConv')


@MODELS.register_module()
class ResNet(FreezableBackbone):
    """ResNet (v1b: stride on the 3x3 conv) as a detection backbone.

    Module names follow MMDetection (``conv1``, ``bn1``, ``layer1``..``layer4``,
    blocks ``conv{i}``/``bn{i}``, shortcut ``downsample.0``/``.1``), which for
    depth 50 are torchvision's ``resnet50`` keys without ``fc``.

    Args:
        depth (int): 18 or 34 (BasicBlock), 50, 101 or 152 (Bottleneck).
        in_channels (int): Image channels. Defaults to 3.
        stem_channels (int, optional): Stem width. Defaults to ``base_channels``.
        base_channels (int): Width of stage 0; stage i has
            ``base_channels * 2**i * expansion`` output channels. Defaults to 64.
        num_stages (int): Residual stages to build, 1..4. Defaults to 4.
        strides (Sequence[int]): Stride of the first block of each stage.
        dilations (Sequence[int]): Dilation of each stage.
        out_indices (Sequence[int]): Stages whose outputs ``forward`` returns.
        style (str): 'pytorch' (stride on the 3x3 conv) or 'caffe' (stride on
            the first 1x1 conv). Defaults to 'pytorch'.
        deep_stem (bool): Three 3x3 convs (``stem.*``) instead of the 7x7 conv.
        avg_down (bool): Average-pool the shortcut instead of a strided conv.
        frozen_stages (int): -1 freezes nothing, 0 the stem, k the stem and
            layer1..layer{k} (no gradients, eval mode). Defaults to -1.
        conv_cfg (dict, optional): mmcv conv config. Defaults to None.
        norm_cfg (dict): mmcv norm config. Defaults to
            ``dict(type='BN', requires_grad=True)``.
        norm_eval (bool): Keep every BatchNorm in eval mode (frozen running
            statistics) during ``train()``. Defaults to True.
        dcn (dict, optional): ``dict(type='DCN' | 'DCNv2', deform_groups=1,
            fallback_on_stride=False)`` makes the 3x3 conv of the Bottlenecks
            of the stages chosen by ``stage_with_dcn`` deformable (mmcv's
            layers and state_dict keys); BasicBlock depths refuse it.
        stage_with_dcn (Sequence[bool]): One flag per stage; used with ``dcn``.
        plugins (list[dict], optional): Layers inserted in the blocks, in
            MMDetection's form ``dict(cfg=dict(type=...), position=
            'after_conv1' | 'after_conv2' | 'after_conv3', stages=(bool,) *
            num_stages)``; see ``detlab.models.layers.plugins``. detlab's
            attention plug-ins are ``SEBlock`` and ``CBAM``.
        with_cp (bool): Activation checkpointing in the blocks. Defaults to False.
        zero_init_residual (bool): Zero the last norm of each block so that it
            starts as the identity (default init only). Defaults to True.
        pretrained (str, optional): Deprecated; use ``init_cfg=dict(type=
            'Pretrained', checkpoint=PATH)``.
        init_cfg (dict | list[dict], optional): Initialization config. None
            means kaiming convs and constant (1, 0) norms.
        act_cfg (dict): Activation of the stem and the blocks (ReLU,
            LeakyReLU, PReLU, ELU, SiLU, GELU, ...), built as mmcv's
            ConvModule builds it; not in MMDetection, whose ResNet is ReLU
            only. Defaults to ``dict(type='ReLU')``.

    Example:
        >>> feats = ResNet(depth=18).eval()(torch.rand(1, 3, 64, 64))
        >>> [tuple(f.shape) for f in feats]
        [(1, 64, 16, 16), (1, 128, 8, 8), (1, 256, 4, 4), (1, 512, 2, 2)]
    """

    arch_settings = {
        18: (BasicBlock, (2, 2, 2, 2)),
        34: (BasicBlock, (3, 4, 6, 3)),
        50: (Bottleneck, (3, 4, 6, 3)),
        101: (Bottleneck, (3, 4, 23, 3)),
        152: (Bottleneck, (3, 8, 36, 3)),
    }

    def __init__(self,
                 depth: int,
                 in_channels: int = 3,
                 stem_channels: Optional[int] = None,
                 base_channels: int = 64,
                 num_stages: int = 4,
                 strides: Sequence[int] = (1, 2, 2, 2),
                 dilations: Sequence[int] = (1, 1, 1, 1),
                 out_indices: Sequence[int] = (0, 1, 2, 3),
                 style: str = 'pytorch',
                 deep_stem: bool = False,
                 avg_down: bool = False,
                 frozen_stages: int = NOT_FROZEN,
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
        super().__init__(init_cfg)
        self.block, stage_blocks = self._arch(depth)
        if conv_cfg is not None and conv_cfg.get('type') in DEFORMABLE_CONV_TYPES:
            raise AssertionValueError(f'{type(self).__name__}: conv_cfg={conv_cfg!r} makes every '
                                      'conv deformable, which detlab does not build; use '
                                      "dcn=dict(type='DCN' | 'DCNv2', deform_groups=1, "
                                      'fallback_on_stride=False) with stage_with_dcn for the '
                                      '3x3 convs of chosen stages')
        if dcn is not None:
            if self.block is BasicBlock:
                refuse_dcn(type(self).__name__, dcn)
            if len(stage_with_dcn) != num_stages:
                raise AssertionValueError(f'{type(self).__name__}: stage_with_dcn '
                                          f'{tuple(stage_with_dcn)} needs one entry per stage '
                                          f'(num_stages={num_stages})')
        self._check_args(num_stages, strides, dilations, out_indices, style, frozen_stages)
        check_plugins(plugins, num_stages)
        self.depth = depth
        self.stem_channels = base_channels if stem_channels is None else stem_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides = tuple(strides)
        self.dilations = tuple(dilations)
        self.out_indices = tuple(out_indices)
        self.style = style
        self.deep_stem = deep_stem
        self.avg_down = avg_down
        self.frozen_stages = frozen_stages
        self.conv_cfg = conv_cfg
        self.norm_cfg = norm_cfg
        self.norm_eval = norm_eval
        self.dcn = dcn
        self.stage_with_dcn = stage_with_dcn
        self.plugins = plugins
        self.act_cfg = act_cfg
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.stage_blocks = stage_blocks[:num_stages]
        block_init_cfg = self._resolve_init_cfg(init_cfg, pretrained)

        self._make_stem_layer(in_channels, self.stem_channels)
        self.res_layers = []
        inplanes = self.stem_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            res_layer = self.make_res_layer(
                block=self.block, inplanes=inplanes, planes=self._stage_planes(i),
                num_blocks=num_blocks, stride=self.strides[i], dilation=self.dilations[i],
                style=style, avg_down=avg_down, with_cp=with_cp, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg, plugins=make_stage_plugins(plugins, i),
                init_cfg=block_init_cfg, act_cfg=act_cfg,
                dcn=dcn if dcn is not None and stage_with_dcn[i] else None,
                **self._stage_block_args(i))
            inplanes = self._stage_planes(i) * self.block.expansion
            self.add_module(f'layer{i + 1}', res_layer)
            self.res_layers.append(f'layer{i + 1}')
        self._freeze_stages()
        #: Channels of the last stage's output.
        self.feat_dim = inplanes

    def _arch(self, depth: int) -> Tuple[type, Sequence[int]]:
        """The block class and the number of blocks of each stage for ``depth``."""
        if depth not in self.arch_settings:
            raise AssertionKeyError(f'{type(self).__name__}: invalid depth {depth!r}; valid '
                                    f'depths are {sorted(self.arch_settings)}')
        return self.arch_settings[depth]

    def _stage_planes(self, stage: int) -> int:
        """``planes`` of the blocks of ``stage``: ``base_channels * 2**stage``."""
        return self.base_channels * STAGE_WIDTH_GROWTH**stage

    def _stage_block_args(self, stage: int) -> dict:
        """Extra arguments of the blocks of ``stage`` (none in ResNet)."""
        return {}

    def make_stage_plugins(self, plugins: List[dict], stage_idx: int) -> List[dict]:
        """The ``dict(cfg, position)`` plugins of stage ``stage_idx`` (MMDetection's method;
        see ``detlab.models.layers.plugins``)."""
        return make_stage_plugins(plugins, stage_idx) or []

    def make_res_layer(self, **kwargs) -> ResLayer:
        """Build one stage; subclasses with other stages override this."""
        return ResLayer(**kwargs)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each map that ``forward`` returns (stage order)."""
        return tuple(self._stage_planes(i) * self.block.expansion
                     for i in range(self.num_stages) if i in self.out_indices)

    def _check_args(self, num_stages: int, strides: Sequence[int], dilations: Sequence[int],
                    out_indices: Sequence[int], style: str, frozen_stages: int) -> None:
        if not 1 <= num_stages <= MAX_STAGES:
            raise AssertionValueError(f'ResNet: num_stages must be in 1..{MAX_STAGES}, got '
                                      f'{num_stages}')
        if len(strides) != num_stages or len(dilations) != num_stages:
            raise AssertionValueError(f'ResNet: strides {tuple(strides)} and dilations '
                                      f'{tuple(dilations)} need one entry per stage (num_stages='
                                      f'{num_stages})')
        if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
            raise AssertionValueError(f'ResNet: out_indices {tuple(out_indices)} must be a '
                                      f'non-empty subset of stage indices 0..{num_stages - 1}')
        if style not in RESNET_STYLES:
            raise AssertionValueError(f'ResNet: style must be one of {RESNET_STYLES}, got '
                                      f'{style!r}')
        if not NOT_FROZEN <= frozen_stages <= num_stages:
            raise AssertionValueError('ResNet: frozen_stages must be in '
                                      f'{NOT_FROZEN}..{num_stages}, got {frozen_stages}')

    def _resolve_init_cfg(self, init_cfg: Union[dict, list, None],
                          pretrained: Optional[str]) -> Optional[dict]:
        """Set ``self.init_cfg``; return the init config of every residual block."""
        self.init_cfg = backbone_init_cfg(type(self).__name__, init_cfg, pretrained)
        if pretrained is not None or init_cfg is not None:
            return None
        if not self.zero_init_residual:
            return None
        last_norm = 'norm2' if self.block is BasicBlock else 'norm3'
        return dict(type='Constant', val=0, override=dict(name=last_norm))

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        if self.deep_stem:
            half = stem_channels // 2
            widths = [(in_channels, half, STEM_STRIDE), (half, half, 1), (half, stem_channels, 1)]
            layers = []
            for cin, cout, stride in widths:
                layers += [
                    build_conv_layer(self.conv_cfg, cin, cout, kernel_size=3, stride=stride,
                                     padding=1, bias=False),
                    build_norm_layer(self.norm_cfg, cout)[1],
                    build_activation(self.act_cfg),
                ]
            self.stem = nn.Sequential(*layers)
        else:
            self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels,
                                          kernel_size=STEM_KERNEL, stride=STEM_STRIDE,
                                          padding=STEM_PADDING, bias=False)
            self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
            self.add_module(self.norm1_name, norm1)
            self.relu = build_activation(self.act_cfg)
        self.maxpool = nn.MaxPool2d(kernel_size=POOL_KERNEL, stride=POOL_STRIDE,
                                    padding=POOL_PADDING)

    @property
    def norm1(self) -> nn.Module:
        """The stem's norm layer (``bn1`` for BN); absent with ``deep_stem``."""
        return getattr(self, self.norm1_name)

    def _frozen_modules(self) -> list:
        if self.frozen_stages == NOT_FROZEN:
            return []
        stem = [self.stem] if self.deep_stem else [self.conv1, self.norm1]
        return stem + [getattr(self, f'layer{i}') for i in range(1, self.frozen_stages + 1)]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the stem and the stages.

        Args:
            x (Tensor): (B, in_channels, H, W) images.

        Returns:
            tuple[Tensor]: One (B, C_i, H / s_i, W / s_i) map per stage i in
            ``out_indices``, in stage order (whatever the order of
            ``out_indices``), with ``C_i = base_channels * 2**i * expansion``
            and ``s_i = 4 * prod(strides[:i + 1])`` (4, 8, 16, 32 by default).
        """
        x = self._stem(x)
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _stem(self, x: Tensor) -> Tensor:
        """The stem and the max pool: (B, C, H, W) -> (B, stem_channels, H / 4, W / 4)."""
        if self.deep_stem:
            x = self.stem(x)
        else:
            x = self.relu(self.norm1(self.conv1(x)))
        return self.maxpool(x)


@MODELS.register_module()
class ResNetV1d(ResNet):
    """ResNet-D ("Bag of Tricks"): deep 3x3 stem and average-pooled shortcuts."""

    def __init__(self, **kwargs) -> None:
        super().__init__(deep_stem=True, avg_down=True, **kwargs)
