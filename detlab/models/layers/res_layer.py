"""A stage of residual blocks, shared by ResNet-style backbones."""
from typing import Optional, Type

from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model import Sequential
from torch import nn

from detlab.structures.errors import AssertionValueError


class ResLayer(Sequential):
    """``num_blocks`` residual blocks; the first one (or the last) changes stride/width.

    Child names are ``0, 1, ...`` and the shortcut of the first block is
    ``0.downsample.0`` (1x1 conv) and ``0.downsample.1`` (norm), as in
    MMDetection and torchvision, so their checkpoints load unchanged. With
    ``avg_down`` an ``AvgPool2d`` comes first and the conv and norm move to
    ``downsample.1`` and ``downsample.2``.

    Args:
        block (type): Block class with an ``expansion`` attribute and the
            constructor of ``BasicBlock``/``Bottleneck``.
        inplanes (int): Channels entering the stage.
        planes (int): Bottleneck width; the stage outputs
            ``planes * block.expansion`` channels.
        num_blocks (int): Number of blocks, >= 1.
        stride (int): Stride of the first block. Defaults to 1.
        avg_down (bool): Downsample the shortcut with an average pool and a
            stride-1 conv instead of a strided conv. Defaults to False.
        conv_cfg (dict, optional): mmcv conv layer config. Defaults to None
            (``nn.Conv2d``).
        norm_cfg (dict): mmcv norm layer config. Defaults to ``dict(type='BN')``.
        downsample_first (bool): The first block changes stride/width (ResNet). With
            False the last block does, and the blocks before it keep ``inplanes``
            channels (MMDetection's Hourglass stages; fits blocks whose expansion is 1,
            such as BasicBlock). Defaults to True.
        **kwargs: Passed to every block (dilation, style, with_cp, init_cfg).
    """

    def __init__(self,
                 block: Type[nn.Module],
                 inplanes: int,
                 planes: int,
                 num_blocks: int,
                 stride: int = 1,
                 avg_down: bool = False,
                 conv_cfg: Optional[dict] = None,
                 norm_cfg: dict = dict(type='BN'),
                 downsample_first: bool = True,
                 **kwargs) -> None:
        if num_blocks < 1:
            raise AssertionValueError(f'ResLayer: num_blocks must be >= 1, got {num_blocks}')
        out_channels = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_channels:
            downsample = self._make_downsample(inplanes, out_channels, stride, avg_down,
                                               conv_cfg, norm_cfg)
        common = dict(conv_cfg=conv_cfg, norm_cfg=norm_cfg, **kwargs)
        changing = dict(planes=planes, stride=stride, downsample=downsample, **common)
        if downsample_first:
            blocks = [block(inplanes=inplanes, **changing)]
            blocks += [
                block(inplanes=out_channels, planes=planes, stride=1, **common)
                for _ in range(1, num_blocks)
            ]
        else:
            blocks = [
                block(inplanes=inplanes, planes=inplanes, stride=1, **common)
                for _ in range(1, num_blocks)
            ]
            blocks.append(block(inplanes=inplanes, **changing))
        super().__init__(*blocks)

    @staticmethod
    def _make_downsample(inplanes: int, out_channels: int, stride: int, avg_down: bool,
                         conv_cfg: Optional[dict], norm_cfg: dict) -> nn.Sequential:
        layers = []
        conv_stride = stride
        if avg_down:
            # ResNet-D: pooling keeps the information that a strided 1x1 conv drops.
            # The pool is added even at stride 1 (an identity) so the conv/norm
            # keys stay at downsample.1/.2 in every stage, as in MMDetection.
            conv_stride = 1
            layers.append(
                nn.AvgPool2d(kernel_size=stride, stride=stride, ceil_mode=True,
                             count_include_pad=False))
        layers.append(
            build_conv_layer(conv_cfg, inplanes, out_channels, kernel_size=1,
                             stride=conv_stride, bias=False))
        layers.append(build_norm_layer(norm_cfg, out_channels)[1])
        return nn.Sequential(*layers)
