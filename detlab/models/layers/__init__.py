"""Building blocks shared by backbones, necks and heads."""
from . import transformer
from .activation import build_activation
from .attention import CBAM, ChannelAttention, SEBlock
from .bbox_nms import batched_nms, multiclass_nms, nms, soft_nms
from .csp_layer import CSPLayer, CSPNeXtBlock, DarknetBottleneck, SPPBottleneck
from .deform_conv import (DeformConv2d, DeformConv2dPack, ModulatedDeformConv2d,
                          ModulatedDeformConv2dPack)
from .ema import ExpMomentumEMA
from .inverted_residual import InvertedResidual
from .norm import MMSyncBN
from .plugins import PLUGIN_POSITIONS, make_stage_plugins
from .positional_encoding import LearnedPositionalEncoding, SinePositionalEncoding
from .pretrained_init import PretrainedInit, load_local_state_dict
from .res_layer import ResLayer
from .transformer import (ConditionalAttention, ConditionalDetrTransformerDecoder,
                          ConditionalDetrTransformerDecoderLayer, DABDetrTransformerDecoder,
                          DABDetrTransformerDecoderLayer, DABDetrTransformerEncoder)
from .transformer import (FFN, MLP, CdnQueryGenerator, DeformableDetrTransformerDecoder,
                          DeformableDetrTransformerDecoderLayer,
                          DeformableDetrTransformerEncoder,
                          DeformableDetrTransformerEncoderLayer, DetrTransformerDecoder,
                          DetrTransformerDecoderLayer, DetrTransformerEncoder,
                          DetrTransformerEncoderLayer, DinoTransformerDecoder,
                          MultiheadAttention, MultiScaleDeformableAttention, PatchEmbed,
                          PatchMerging, coordinate_to_encoding, inverse_sigmoid,
                          multi_scale_deformable_attn, nchw_to_nlc, nlc_to_nchw)

__all__ = [
    'PretrainedInit', 'ResLayer', 'load_local_state_dict', 'batched_nms', 'multiclass_nms', 'nms',
    'soft_nms', 'build_activation', 'CBAM', 'SEBlock', 'PLUGIN_POSITIONS', 'make_stage_plugins',
    'inverse_sigmoid', 'ChannelAttention', 'CSPLayer', 'CSPNeXtBlock', 'DarknetBottleneck',
    'SPPBottleneck', 'ExpMomentumEMA', 'LearnedPositionalEncoding', 'SinePositionalEncoding',
    'transformer', 'FFN', 'MLP', 'MultiheadAttention', 'MultiScaleDeformableAttention',
    'multi_scale_deformable_attn', 'coordinate_to_encoding', 'CdnQueryGenerator',
    'DetrTransformerEncoder', 'DetrTransformerDecoder', 'DetrTransformerEncoderLayer',
    'DetrTransformerDecoderLayer', 'DeformableDetrTransformerEncoder',
    'DeformableDetrTransformerDecoder', 'DeformableDetrTransformerEncoderLayer',
    'DeformableDetrTransformerDecoderLayer', 'DinoTransformerDecoder', 'DeformConv2d',
    'DeformConv2dPack', 'ModulatedDeformConv2d', 'ModulatedDeformConv2dPack', 'InvertedResidual',
    'PatchEmbed', 'PatchMerging', 'nchw_to_nlc', 'nlc_to_nchw', 'MMSyncBN',
    'ConditionalAttention', 'ConditionalDetrTransformerDecoder',
    'ConditionalDetrTransformerDecoderLayer', 'DABDetrTransformerDecoder',
    'DABDetrTransformerDecoderLayer', 'DABDetrTransformerEncoder'
]
