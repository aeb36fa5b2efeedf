"""HRNet: parallel branches at 1/4, 1/8, 1/16 and 1/32 resolution that keep exchanging
features, with MMDetection 3.x's config keys (``extra``) and state_dict keys.

`High-Resolution Representations for Labeling Pixels and Regions
<https://arxiv.org/abs/1904.04514>`_.
"""
from typing import List, Optional, Sequence, Union

from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import BaseModule, ModuleList, Sequential
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionKeyError, AssertionValueError
from .base_backbone import FreezableBackbone, backbone_init_cfg
from .resnet_blocks import BasicBlock, Bottleneck

#: ``extra['stageN']['block']`` names.
HRNET_BLOCKS = {'BASIC': BasicBlock, 'BOTTLENECK': Bottleneck}
HRNET_STAGES = ('stage1', 'stage2', 'stage3', 'stage4')
STAGE_KEYS = ('num_modules', 'num_branches', 'block', 'num_blocks', 'num_channels')
#: The stem: two 3x3 stride-2 convs to 64 channels (1/4 resolution).
STEM_CHANNELS = 64


def _conv_norm(conv_cfg: Optional[dict], norm_cfg: dict, in_channels: int, out_channels: int,
               kernel_size: int, stride: int = 1, relu: bool = False) -> nn.Sequential:
    """conv (no bias) -> norm [-> ReLU] as ``nn.Sequential`` (keys ``0.weight``, ``1.*``)."""
    layers = [build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size=kernel_size,
                               stride=stride, padding=kernel_size // 2, bias=False),
              build_norm_layer(norm_cfg, out_channels)[1]]
    if relu:
        layers.append(nn.ReLU(inplace=False))
    return nn.Sequential(*layers)


def _make_blocks(block: type, inplanes: int, planes: int, num_blocks: int, with_cp: bool,
                 conv_cfg: Optional[dict], norm_cfg: dict,
                 init_cfg: Optional[dict] = None) -> Sequential:
    """``num_blocks`` residual blocks; the first projects the shortcut when widths differ."""
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = _conv_norm(conv_cfg, norm_cfg, inplanes, planes * block.expansion, 1)
    layers = []
    for i in range(num_blocks):
        layers.append(block(inplanes if i == 0 else planes * block.expansion, planes,
                            downsample=downsample if i == 0 else None, with_cp=with_cp,
                            norm_cfg=norm_cfg, conv_cfg=conv_cfg, init_cfg=init_cfg))
    return Sequential(*layers)


class HRModule(BaseModule):
    """Residual blocks on each branch, then every output branch sums all branches.

    Branch ``j`` reaches branch ``i`` through a 1x1 conv and nearest upsampling
    by ``2 ** (j - i)`` when ``j > i`` (lower resolution), or through ``i - j``
    3x3 stride-2 convs when ``j < i`` (only the last one changes channels and
    has no ReLU). ``fuse_layers[i][i]`` is None: the branch is added as is.

    Args:
        num_branches (int): Parallel branches.
        blocks (type): ``BasicBlock`` or ``Bottleneck``.
        num_blocks (Sequence[int]): Blocks per branch.
        in_channels (Sequence[int]): Input channels per branch.
        num_channels (Sequence[int]): Block ``planes`` per branch.
        multiscale_output (bool): Fuse to every branch, or only to the first.
        with_cp (bool): Activation checkpointing in the blocks.
        conv_cfg (dict, optional): mmcv conv config.
        norm_cfg (dict): mmcv norm config.
        block_init_cfg (dict, optional): init_cfg of each block.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 num_branches: int,
                 blocks: type,
                 num_blocks: Sequence[int],
                 in_channels: Sequence[int],
                 num_channels: Sequence[int],
                 multiscale_output: bool = True,
                 with_cp: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 block_init_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        for name, values in (('num_blocks', num_blocks), ('in_channels', in_channels),
                             ('num_channels', num_channels)):
            if len(values) != num_branches:
                raise AssertionValueError(f'HRModule: num_branches={num_branches} but {name} '
                                          f'has {len(values)} entries ({tuple(values)})')
        self.num_branches = num_branches
        self.multiscale_output = multiscale_output
        self.with_cp = with_cp
        self.branches = ModuleList(
            _make_blocks(blocks, in_channels[i], num_channels[i], num_blocks[i], with_cp,
                         conv_cfg, norm_cfg, block_init_cfg) for i in range(num_branches))
        self.in_channels = [c * blocks.expansion for c in num_channels]
        self.fuse_layers = self._make_fuse_layers(conv_cfg, norm_cfg)
        self.relu = nn.ReLU(inplace=False)

    def _make_fuse_layers(self, conv_cfg: Optional[dict],
                          norm_cfg: dict) -> Optional[nn.ModuleList]:
        if self.num_branches == 1:
            return None
        channels = self.in_channels
        fuse_layers = []
        for i in range(self.num_branches if self.multiscale_output else 1):
            fuse_layer = []
            for j in range(self.num_branches):
                if j > i:
                    fuse = _conv_norm(conv_cfg, norm_cfg, channels[j], channels[i], 1)
                    fuse.append(nn.Upsample(scale_factor=2**(j - i), mode='nearest'))
                elif j == i:
                    fuse = None
                else:
                    fuse = nn.Sequential(*[
                        _conv_norm(conv_cfg, norm_cfg, channels[j],
                                   channels[i] if k == i - j - 1 else channels[j], 3, stride=2,
                                   relu=k != i - j - 1) for k in range(i - j)])
                fuse_layer.append(fuse)
            fuse_layers.append(nn.ModuleList(fuse_layer))
        return nn.ModuleList(fuse_layers)

    def forward(self, x: List[Tensor]) -> List[Tensor]:
        """Args: x (list[Tensor]): one (B, C_i, H / 2**i, W / 2**i) map per branch.

        Returns:
            list[Tensor]: the fused maps, one per output branch.
        """
        x = [branch(feat) for branch, feat in zip(self.branches, x)]
        if self.num_branches == 1:
            return x
        fused = []
        for i, fuse_layer in enumerate(self.fuse_layers):
            y = 0
            for j, fuse in enumerate(fuse_layer):
                y = y + (x[j] if fuse is None else fuse(x[j]))
            fused.append(self.relu(y))
        return fused


def check_extra(extra: dict) -> None:
    """Fail clearly on an HRNet ``extra`` without four well-formed stages."""
    if not isinstance(extra, dict):
        raise AssertionValueError(f'HRNet: extra must be a dict of {HRNET_STAGES}, got {extra!r}')
    for stage in HRNET_STAGES:
        if stage not in extra:
            raise AssertionKeyError(f'HRNet: extra needs the keys {HRNET_STAGES}; {stage!r} is '
                                    f'missing (got {sorted(extra)})')
        cfg = extra[stage]
        missing = [key for key in STAGE_KEYS if key not in cfg]
        if missing:
            raise AssertionKeyError(f'HRNet: extra[{stage!r}] lacks {missing}; each stage needs '
                                    f'{STAGE_KEYS}')
        if cfg['block'] not in HRNET_BLOCKS:
            raise AssertionKeyError(f"HRNet: extra[{stage!r}]['block']={cfg['block']!r}; valid "
                                    f'blocks are {sorted(HRNET_BLOCKS)}')
        for key in ('num_blocks', 'num_channels'):
            if len(cfg[key]) != cfg['num_branches']:
                raise AssertionValueError(
                    f"HRNet: extra[{stage!r}]['{key}']={tuple(cfg[key])} needs num_branches="
                    f"{cfg['num_branches']} entries")


@MODELS.register_module()
class HRNet(FreezableBackbone):
    """HRNet backbone; outputs one map per branch of stage 4, highest resolution first.

    Stem: ``conv1``/``norm1``, ``conv2``/``norm2`` (two 3x3 stride-2 convs),
    then ``layer1`` (stage 1's blocks on one branch). Each later stage opens
    new branches with ``transition{k}`` (3x3 stride-2 convs from the lowest
    resolution branch) and runs ``num_modules`` :class:`HRModule`\\ s.

    Args:
        extra (dict): ``stage1`` .. ``stage4``, each ``dict(num_modules,
            num_branches, block='BASIC' | 'BOTTLENECK', num_blocks=(...),
            num_channels=(...))`` with one entry per branch. Stage 1 uses only
            ``block``, ``num_blocks[0]`` and ``num_channels[0]``.
        in_channels (int): Image channels. Defaults to 3.
        conv_cfg (dict, optional): mmcv conv config. Defaults to None.
        norm_cfg (dict): mmcv norm config. Defaults to ``dict(type='BN')``.
        norm_eval (bool): Keep BatchNorms in eval mode in ``train()``.
            Defaults to True.
        with_cp (bool): Activation checkpointing in the blocks.
        zero_init_residual (bool): Accepted for MMDetection's configs; as in
            MMDetection 3.3 it changes nothing, since HRNet always has an
            init_cfg.
        multiscale_output (bool): False returns only the highest resolution
            map. Defaults to True.
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        init_cfg (dict | list[dict], optional): None means kaiming convs and
            constant (1, 0) norms.

    Example:
        >>> # HRNetV2-W32 on a (1, 3, 64, 64) image:
        >>> # (1, 32, 16, 16), (1, 64, 8, 8), (1, 128, 4, 4), (1, 256, 2, 2)
    """

    blocks_dict = HRNET_BLOCKS

    def __init__(self,
                 extra: dict,
                 in_channels: int = 3,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 norm_eval: bool = True,
                 with_cp: bool = False,
                 zero_init_residual: bool = False,
                 multiscale_output: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(backbone_init_cfg('HRNet', init_cfg, pretrained))
        check_extra(extra)
        self.extra = extra
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.conv1 = build_conv_layer(conv_cfg, in_channels, STEM_CHANNELS, kernel_size=3,
                                      stride=2, padding=1, bias=False)
        self.norm1_name = self._add_norm(norm_cfg, 1)
        self.conv2 = build_conv_layer(conv_cfg, STEM_CHANNELS, STEM_CHANNELS, kernel_size=3,
                                      stride=2, padding=1, bias=False)
        self.norm2_name = self._add_norm(norm_cfg, 2)
        self.relu = nn.ReLU(inplace=True)

        stage1 = extra['stage1']
        block = HRNET_BLOCKS[stage1['block']]
        self.layer1 = _make_blocks(block, STEM_CHANNELS, stage1['num_channels'][0],
                                   stage1['num_blocks'][0], with_cp, conv_cfg, norm_cfg)
        channels = [stage1['num_channels'][0] * block.expansion]
        for k, stage in enumerate(HRNET_STAGES[1:], start=1):
            cfg = extra[stage]
            expansion = HRNET_BLOCKS[cfg['block']].expansion
            branch_channels = [c * expansion for c in cfg['num_channels']]
            self.add_module(f'transition{k}',
                            self._make_transition(channels, branch_channels, conv_cfg, norm_cfg))
            self.add_module(stage, self._make_stage(cfg, branch_channels, conv_cfg, norm_cfg,
                                                    multiscale_output or stage != 'stage4'))
            channels = branch_channels

    def _add_norm(self, norm_cfg: dict, index: int) -> str:
        name, norm = build_norm_layer(norm_cfg, STEM_CHANNELS, postfix=index)
        self.add_module(name, norm)
        return name

    @property
    def norm1(self) -> nn.Module:
        """The norm after ``conv1``."""
        return getattr(self, self.norm1_name)

    @property
    def norm2(self) -> nn.Module:
        """The norm after ``conv2``."""
        return getattr(self, self.norm2_name)

    @staticmethod
    def _make_transition(pre_channels: List[int], cur_channels: List[int],
                         conv_cfg: Optional[dict], norm_cfg: dict) -> nn.ModuleList:
        """Existing branches change width with a 3x3 conv (None when equal); each new
        branch ``i`` comes from the last old branch through ``i + 1 - len(pre)`` 3x3
        stride-2 convs, the last of which sets its width."""
        layers = []
        for i, channels in enumerate(cur_channels):
            if i < len(pre_channels):
                layers.append(None if channels == pre_channels[i] else _conv_norm(
                    conv_cfg, norm_cfg, pre_channels[i], channels, 3, relu=True))
                continue
            steps = i + 1 - len(pre_channels)
            source = pre_channels[-1]
            layers.append(nn.Sequential(*[
                _conv_norm(conv_cfg, norm_cfg, source, channels if j == steps - 1 else source, 3,
                           stride=2, relu=True) for j in range(steps)]))
        return nn.ModuleList(layers)

    def _make_stage(self, cfg: dict, in_channels: List[int], conv_cfg: Optional[dict],
                    norm_cfg: dict, multiscale_output: bool) -> Sequential:
        """``num_modules`` HRModules; only the last may fuse to the first branch alone."""
        block = HRNET_BLOCKS[cfg['block']]
        modules = []
        for i in range(cfg['num_modules']):
            last = i == cfg['num_modules'] - 1
            modules.append(HRModule(cfg['num_branches'], block, cfg['num_blocks'],
                                    list(in_channels), cfg['num_channels'],
                                    multiscale_output or not last, with_cp=self.with_cp,
                                    conv_cfg=conv_cfg, norm_cfg=norm_cfg))
        return Sequential(*modules)

    def _freeze_stages(self) -> None:
        """HRNet has no ``frozen_stages``."""

    def forward(self, x: Tensor) -> List[Tensor]:
        """Args: x (Tensor): (B, in_channels, H, W).

        Returns:
            list[Tensor]: (B, C_i, H / 2**(i+2), W / 2**(i+2)) per branch of
            stage 4 (only the first with ``multiscale_output=False``).
        """
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.relu(self.norm2(self.conv2(x)))
        feats = [self.layer1(x)]
        for k, stage in enumerate(HRNET_STAGES[1:], start=1):
            transition = getattr(self, f'transition{k}')
            inputs = []
            for i, layer in enumerate(transition):
                if i >= len(feats):  # a new branch, from the lowest resolution one
                    inputs.append(layer(feats[-1]))
                else:
                    inputs.append(feats[i] if layer is None else layer(feats[i]))
            feats = getattr(self, stage)(inputs)
        return feats
