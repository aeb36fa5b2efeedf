"""The DETR family's transformer layers, with MMDetection's names and keys."""
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
from .utils import FFN, MLP, MultiheadAttention, coordinate_to_encoding, inverse_sigmoid

__all__ = [
    'DetrTransformerEncoder', 'DetrTransformerDecoder', 'DetrTransformerEncoderLayer',
    'DetrTransformerDecoderLayer', 'DeformableDetrTransformerEncoder',
    'DeformableDetrTransformerDecoder', 'DeformableDetrTransformerEncoderLayer',
    'DeformableDetrTransformerDecoderLayer', 'DinoTransformerDecoder', 'CdnQueryGenerator',
    'MultiScaleDeformableAttention', 'multi_scale_deformable_attn', 'FFN', 'MLP',
    'MultiheadAttention', 'coordinate_to_encoding', 'inverse_sigmoid', 'ConditionalAttention',
    'ConditionalDetrTransformerDecoder', 'ConditionalDetrTransformerDecoderLayer',
    'DABDetrTransformerDecoder', 'DABDetrTransformerDecoderLayer', 'DABDetrTransformerEncoder'
]
