"""Darknet-53 (YOLOv3's backbone) with MMDetection 3.3's config and state_dict keys."""
from typing import Optional, Sequence, Tuple, Union

from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionKeyError, AssertionValueError
from .base_backbone import FreezableBackbone, backbone_init_cfg

DEFAULT_NORM = dict(type='BN', requires_grad=True)
DEFAULT_ACT = dict(type='LeakyReLU', negative_slope=0.1)


class ResBlock(BaseModule):
    """``x + conv2(conv1(x))``: a 1x1 conv to half the channels, then a 3x3 conv back.

    Each conv is a ConvModule (conv, norm, activation), keys ``conv{i}.conv``
    and ``conv{i}.bn``.

    Args:
        in_channels (int): Channels in and out; must be even.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self,
                 in_channels: int,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = DEFAULT_NORM,
                 act_cfg: dict = DEFAULT_ACT,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        if in_channels % 2:
            raise AssertionValueError(f'ResBlock: in_channels must be even, got {in_channels}')
        half = in_channels // 2
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(in_channels, half, 1, **cfg)
        self.conv2 = ConvModule(half, in_channels, 3, padding=1, **cfg)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.conv2(self.conv1(x))


@MODELS.register_module()
class Darknet(FreezableBackbone):
    """Darknet-53: a 3x3 stem conv, then five stages of a stride-2 3x3 conv and ResBlocks.

    Module names are MMDetection's: ``conv1`` and ``conv_res_block1`` ..
    ``conv_res_block5``, each ``conv`` then ``res0``, ``res1``, ...

    Args:
        depth (int): Only 53. Defaults to 53.
        out_indices (Sequence[int]): Which of ``conv1`` (0) and the five
            stages (1..5) ``forward`` returns. Defaults to (3, 4, 5): strides
            8, 16, 32 with 256, 512, 1024 channels.
        frozen_stages (int): The first ``frozen_stages`` of (``conv1``,
            stage 1, ...) get no gradients and stay in eval mode; -1 freezes
            nothing. Defaults to -1.
        conv_cfg, norm_cfg, act_cfg (dict): mmcv layer configs (BN and
            LeakyReLU(0.1) by default).
        norm_eval (bool): Keep BatchNorms in eval mode while training.
            Defaults to True.
        pretrained (str, optional): Deprecated; use ``init_cfg``.
        init_cfg (dict | list[dict], optional): Initialization config; None
            means kaiming convs and constant (1, 0) norms.

    Example:
        >>> feats = Darknet(depth=53).eval()(torch.rand(1, 3, 64, 64))
        >>> [tuple(f.shape) for f in feats]
        [(1, 256, 8, 8), (1, 512, 4, 4), (1, 1024, 2, 2)]
    """

    #: depth -> (ResBlocks per stage, (in, out) channels per stage)
    arch_settings = {
        53: ((1, 2, 8, 8, 4), ((32, 64), (64, 128), (128, 256), (256, 512), (512, 1024))),
    }
    STEM_CHANNELS = 32

    def __init__(self,
                 depth: int = 53,
                 out_indices: Sequence[int] = (3, 4, 5),
                 frozen_stages: int = -1,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = DEFAULT_NORM,
                 act_cfg: dict = DEFAULT_ACT,
                 norm_eval: bool = True,
                 pretrained: Optional[str] = None,
                 init_cfg: Union[dict, list, None] = None) -> None:
        super().__init__(init_cfg)
        if depth not in self.arch_settings:
            raise AssertionKeyError(f'Darknet: invalid depth {depth!r}; valid depths are '
                                    f'{sorted(self.arch_settings)}')
        num_blocks, channels = self.arch_settings[depth]
        if not out_indices or any(not 0 <= i <= len(num_blocks) for i in out_indices):
            raise AssertionValueError(f'Darknet: out_indices {tuple(out_indices)} must be a '
                                      f'non-empty subset of 0..{len(num_blocks)}')
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.layers, self.channels = num_blocks, channels
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        self.conv1 = ConvModule(3, self.STEM_CHANNELS, 3, padding=1, **cfg)
        self.cr_blocks = ['conv1']
        for i, repeats in enumerate(num_blocks):
            name = f'conv_res_block{i + 1}'
            self.add_module(name, self.make_conv_res_block(*channels[i], repeats, **cfg))
            self.cr_blocks.append(name)
        self.init_cfg = backbone_init_cfg('Darknet', init_cfg, pretrained)

    @staticmethod
    def make_conv_res_block(in_channels: int, out_channels: int, res_repeat: int,
                            conv_cfg: Optional[dict] = None, norm_cfg: dict = DEFAULT_NORM,
                            act_cfg: dict = DEFAULT_ACT) -> nn.Sequential:
        """A stride-2 3x3 ConvModule (``conv``) then ``res_repeat`` ResBlocks (``res{i}``)."""
        cfg = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=act_cfg)
        block = nn.Sequential()
        block.add_module('conv', ConvModule(in_channels, out_channels, 3, stride=2, padding=1,
                                            **cfg))
        for index in range(res_repeat):
            block.add_module(f'res{index}', ResBlock(out_channels, **cfg))
        return block

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the maps of ``out_indices``; index i has stride 2**i."""
        outs = []
        for i, name in enumerate(self.cr_blocks):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def _freeze_stages(self) -> None:
        for name in self.cr_blocks[:max(self.frozen_stages, 0)]:
            module = getattr(self, name)
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
