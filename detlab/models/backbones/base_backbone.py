"""What detlab's backbones share: frozen stages, ``norm_eval`` and MMDetection's default init."""
import warnings
from typing import Optional, Union

from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from detlab.structures.errors import AssertionTypeError, AssertionValueError

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
