"""What detlab's backbones share: frozen stages, ``norm_eval`` and MMDetection's default init."""
import warnings
from typing import List, Optional, Sequence, Tuple, Union

from mmcv.cnn import ConvModule, DepthwiseSeparableConvModule
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from detlab.structures.errors import AssertionTypeError, AssertionValueError
from ..layers.csp_layer import CSPLayer, SPPBottleneck

#: The init every MMDetection backbone gets without init_cfg: kaiming convs, norms at (1, 0).
DEFAULT_BACKBONE_INIT = (
    dict(type='Kaiming', layer='Conv2d'),
    dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm']),
)


def backbone_init_cfg(owner: str, init_cfg: Union[dict, list, None],
                      pretrained: Optional[str]) -> Union[dict, list]:
    """The init_cfg a backbone uses: ``init_cfg``, the deprecated ``pretrained`` path as a
    ``Pretrained`` init, or :data:`DEFAULT_BACKBONE_INIT` when neither is given.

    Raises:
        ValueError: Both given. TypeError: ``pretrained`` not a str.
    """
    if pretrained is None:
        return [dict(cfg) for cfg in DEFAULT_BACKBONE_INIT] if init_cfg is None else init_cfg
    if init_cfg:
        raise AssertionValueError(f'{owner}: give init_cfg or the deprecated pretrained, not both')
    if not isinstance(pretrained, str):
        raise AssertionTypeError(f'{owner}: pretrained must be a str or None, got {pretrained!r}')
    warnings.warn(f"{owner}: 'pretrained' is deprecated, use init_cfg=dict(type='Pretrained', "
                  'checkpoint=...)', DeprecationWarning)
    return dict(type='Pretrained', checkpoint=pretrained)


class FreezableBackbone(BaseModule):
    """A backbone whose ``train()`` keeps frozen stages (and with ``norm_eval`` every
    BatchNorm) in eval mode. Subclasses set ``norm_eval`` and define ``_freeze_stages``."""

    norm_eval = False

    def _freeze_stages(self) -> None:
        """Put frozen stages in eval mode and stop their gradients."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> 'FreezableBackbone':
        """Set train mode, keeping frozen stages and (with ``norm_eval``) BN in eval."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for module in self.modules():
                if isinstance(module, _BatchNorm):
                    module.eval()
        return self


#: ``frozen_stages=-1`` freezes nothing; 0 freezes the stem; k also stage1..stage{k}.
NOT_FROZEN = -1


class CSPStagesBackbone(FreezableBackbone):
    """A stem and stages ``stage{i}`` of [stride-2 conv, (SPP,) CSPLayer], the
    layout of CSPDarknet (YOLOX) and CSPNeXt (RTMDet); ``forward`` returns the
    outputs of the ``out_indices`` layers (0 = stem, i = stage i).

    Subclasses set ``self.stem`` and call :meth:`_check_arch` and
    :meth:`_add_stages` in ``__init__``.
    """

    def _check_arch(self, arch: str, arch_setting: list, out_indices: Sequence[int],
                    frozen_stages: int) -> None:
        name = type(self).__name__
        num_layers = len(arch_setting) + 1
        if not set(out_indices) <= set(range(num_layers)):
            raise ValueError(f'{name}: out_indices={tuple(out_indices)} must lie in '
                             f'0..{num_layers - 1} (0 = stem, i = stage i) for arch={arch!r}')
        if frozen_stages not in range(NOT_FROZEN, num_layers):
            raise ValueError(f'{name}: frozen_stages={frozen_stages} must be in '
                             f'-1..{num_layers - 1}')

    def _add_stages(self, arch_setting: List[list], deepen_factor: float, widen_factor: float,
                    use_depthwise: bool, spp_kernel_sizes: Sequence[int], csp_cfg: dict,
                    layer_cfgs: dict) -> None:
        """Add ``stage1..stageN`` from rows of [in_channels, out_channels,
        num_blocks, add_identity, use_spp] scaled by the factors.

        Args:
            csp_cfg (dict): CSPLayer arguments beyond channels, blocks,
                identity, depthwise and ``layer_cfgs``.
            layer_cfgs (dict): ``conv_cfg``, ``norm_cfg``, ``act_cfg``.
        """
        conv = DepthwiseSeparableConvModule if use_depthwise else ConvModule
        self.layers = ['stem']
        for i, (in_channels, out_channels, num_blocks, add_identity,
                use_spp) in enumerate(arch_setting):
            in_channels = int(in_channels * widen_factor)
            out_channels = int(out_channels * widen_factor)
            num_blocks = max(round(num_blocks * deepen_factor), 1)
            stage = [conv(in_channels, out_channels, 3, stride=2, padding=1, **layer_cfgs)]
            if use_spp:
                stage.append(SPPBottleneck(out_channels, out_channels,
                                           kernel_sizes=spp_kernel_sizes, **layer_cfgs))
            stage.append(CSPLayer(out_channels, out_channels, num_blocks=num_blocks,
                                  add_identity=add_identity, use_depthwise=use_depthwise,
                                  **csp_cfg, **layer_cfgs))
            self.add_module(f'stage{i + 1}', nn.Sequential(*stage))
            self.layers.append(f'stage{i + 1}')

    def _freeze_stages(self) -> None:
        for name in self.layers[:self.frozen_stages + 1]:
            layer = getattr(self, name)
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """(B, 3, H, W) -> the outputs of the ``out_indices`` layers."""
        outs = []
        for i, name in enumerate(self.layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)
