"""Building blocks shared by backbones, necks and heads."""
from .bbox_nms import batched_nms, multiclass_nms, nms, soft_nms
from .pretrained_init import PretrainedInit, load_local_state_dict
from .res_layer import ResLayer

__all__ = ['PretrainedInit', 'ResLayer', 'load_local_state_dict', 'batched_nms', 'multiclass_nms',
           'nms', 'soft_nms']

from .activation import build_activation, inverse_sigmoid  # noqa: E402
from .attention import CBAM, ChannelAttention, SEBlock  # noqa: E402
from .csp_layer import CSPLayer, CSPNeXtBlock, DarknetBottleneck, SPPBottleneck  # noqa: E402
from .deform_conv import (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d,  # noqa: E402
                          ModulatedDeformConv2dPack)
from .inverted_residual import InvertedResidual  # noqa: E402
from .plugins import PLUGIN_POSITIONS, make_stage_plugins  # noqa: E402

__all__ += ['build_activation', 'CBAM', 'SEBlock', 'PLUGIN_POSITIONS', 'make_stage_plugins',
            'inverse_sigmoid', 'ChannelAttention', 'CSPLayer', 'CSPNeXtBlock',
            'DarknetBottleneck', 'SPPBottleneck', 'DeformConv2d', 'DeformConv2dPack',
            'ModulatedDeformConv2d', 'ModulatedDeformConv2dPack', 'InvertedResidual']

from .ema import ExpMomentumEMA  # noqa: E402

__all__ += ['ExpMomentumEMA']
