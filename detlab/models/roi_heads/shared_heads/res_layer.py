"""ResLayer shared head: a ResNet stage run on every RoI feature (C4 detectors)."""
from typing import Optional

from mmengine.model import BaseModule
from torch import Tensor, nn

from detlab.models.backbones.resnet import ResNet
from detlab.models.layers import ResLayer as ResNetStage
from detlab.registry import MODELS

#: Width of ResNet's first stage; stage i is 2**i times as wide.
BASE_PLANES = 64


@MODELS.register_module('ResLayer')
class ResLayer(BaseModule):
    """Stage ``stage`` of a ResNet-``depth`` (0-based; 3 is ``layer4``) applied
    to the pooled RoI features, as MMDetection's C4 models do: its state_dict
    keys are ``layer{stage + 1}.*``, so a ResNet checkpoint's last stage loads.

    Args:
        depth (int): ResNet depth (18, 34, 50, 101, 152).
        stage (int): Which stage. Defaults to 3.
        stride (int): Stride of the stage's first block. Defaults to 2.
        dilation (int): Dilation of its 3x3 convs. Defaults to 1.
        style (str): 'pytorch' or 'caffe' (where a block's stride sits).
        norm_cfg (dict): Norm layer config.
        norm_eval (bool): Keep BatchNorm in eval mode while training.
        with_cp (bool): Gradient checkpointing of the blocks.
        dcn (dict, optional): Not supported (deformable convs); must be None.
        init_cfg (dict | list, optional): Defaults to Kaiming convs and
            BatchNorm/GroupNorm weights of 1, as MMDetection.
    """

    def __init__(self,
                 depth: int,
                 stage: int = 3,
                 stride: int = 2,
                 dilation: int = 1,
                 style: str = 'pytorch',
                 norm_cfg: dict = dict(type='BN', requires_grad=True),
                 norm_eval: bool = True,
                 with_cp: bool = False,
                 dcn: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer='Conv2d'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg=init_cfg)
        if depth not in ResNet.arch_settings:
            raise KeyError(f'ResLayer: invalid depth {depth!r}; valid depths are '
                           f'{sorted(ResNet.arch_settings)}')
        if dcn is not None:
            raise ValueError('ResLayer: dcn is not supported by detlab\'s shared head; '
                             'remove it.')
        block, stage_blocks = ResNet.arch_settings[depth]
        if not 0 <= stage < len(stage_blocks):
            raise ValueError(f'ResLayer: stage must be in 0..{len(stage_blocks) - 1}, '
                             f'got {stage}')
        self.stage = stage
        self.norm_eval = norm_eval
        self.norm_cfg = norm_cfg
        planes = BASE_PLANES * 2**stage
        inplanes = BASE_PLANES * 2**(stage - 1) * block.expansion
        self.add_module(f'layer{stage + 1}', ResNetStage(
            block=block, inplanes=inplanes, planes=planes, num_blocks=stage_blocks[stage],
            stride=stride, dilation=dilation, style=style, with_cp=with_cp,
            norm_cfg=norm_cfg))

    def forward(self, x: Tensor) -> Tensor:
        """(K, C_in, h, w) RoI features -> (K, C_out, h / stride, w / stride)."""
        return getattr(self, f'layer{self.stage + 1}')(x)

    def train(self, mode: bool = True) -> 'ResLayer':
        super().train(mode)
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self
