"""Transformer layers with MMDetection's names and keys: the DETR family's, and the patch
layers, Swin's window attention (``swin_layers``) and the checkpoint converters of the
vision-transformer backbones."""
from .conditional_detr_layers import (ConditionalAttention, ConditionalDetrTransformerDecoder,
                                      ConditionalDetrTransformerDecoderLayer)
from .dab_detr_layers import (DABDetrTransformerDecoder, DABDetrTransformerDecoderLayer,
                              DABDetrTransformerEncoder)
from .deformable_detr_layers import (DeformableDetrTransformerDecoder,
                                     DeformableDetrTransformerDecoderLayer,
                                     DeformableDetrTransformerEncoder,
                                     DeformableDetrTransformerEncoderLayer)
from .detr_layers import (DetrTransformerDecoder, DetrTransformerDecoderLayer,
                          DetrTransformerEncoder, DetrTransformerEncoderLayer)
from .dino_layers import CdnQueryGenerator, DinoTransformerDecoder
from .ms_deform_attn import MultiScaleDeformableAttention, multi_scale_deformable_attn
from .patch_layers import PatchEmbed, PatchMerging, nchw_to_nlc, nlc_to_nchw
from .utils import FFN, MLP, MultiheadAttention, coordinate_to_encoding, inverse_sigmoid
from .weight_converters import pvt_convert, swin_converter

__all__ = [
    'DetrTransformerEncoder', 'DetrTransformerDecoder', 'DetrTransformerEncoderLayer',
    'DetrTransformerDecoderLayer', 'DeformableDetrTransformerEncoder',
    'DeformableDetrTransformerDecoder', 'DeformableDetrTransformerEncoderLayer',
    'DeformableDetrTransformerDecoderLayer', 'DinoTransformerDecoder', 'CdnQueryGenerator',
    'MultiScaleDeformableAttention', 'multi_scale_deformable_attn', 'FFN', 'MLP',
    'MultiheadAttention', 'coordinate_to_encoding', 'inverse_sigmoid', 'PatchEmbed',
    'PatchMerging', 'nchw_to_nlc', 'nlc_to_nchw', 'pvt_convert', 'swin_converter', 'ConditionalAttention',
    'ConditionalDetrTransformerDecoder', 'ConditionalDetrTransformerDecoderLayer',
    'DABDetrTransformerDecoder', 'DABDetrTransformerDecoderLayer', 'DABDetrTransformerEncoder'
]
