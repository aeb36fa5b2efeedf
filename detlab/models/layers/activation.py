"""Activation layers from an mmcv ``act_cfg``, built the way ConvModule builds them."""
from mmcv.cnn import build_activation_layer
from torch import nn

from detlab.structures.errors import AssertionValueError

#: Activation types whose torch modules take no ``inplace`` argument (ConvModule's list).
NO_INPLACE_ACTIVATIONS = ('Tanh', 'PReLU', 'Sigmoid', 'HSigmoid', 'Swish', 'GELU')


def build_activation(act_cfg: dict, inplace: bool = True) -> nn.Module:
    """Build ``act_cfg`` (e.g. ReLU, LeakyReLU, PReLU, ELU, SiLU, GELU).

    As in mmcv's ``ConvModule``, ``inplace`` is the default of the types that
    take one; an ``inplace`` key in ``act_cfg`` wins.

    Args:
        act_cfg (dict): mmcv activation config with a ``type``.
        inplace (bool): Default of ``inplace``. Defaults to True.

    Returns:
        nn.Module: The activation.

    Raises:
        ValueError: ``act_cfg`` is not a dict with a ``type``.
    """
    if not isinstance(act_cfg, dict) or 'type' not in act_cfg:
        raise AssertionValueError("act_cfg must be a dict with a 'type' such as "
                                  f"dict(type='ReLU'), got {act_cfg!r}")
    cfg = dict(act_cfg)
    if cfg['type'] not in NO_INPLACE_ACTIVATIONS:
        cfg.setdefault('inplace', inplace)
    return build_activation_layer(cfg)
