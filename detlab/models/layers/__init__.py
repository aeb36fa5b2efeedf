"""Building blocks shared by backbones, necks and heads."""
from .bbox_nms import batched_nms, multiclass_nms, nms, soft_nms
from .pretrained_init import PretrainedInit, load_local_state_dict
from .res_layer import ResLayer

__all__ = ['PretrainedInit', 'ResLayer', 'load_local_state_dict', 'batched_nms', 'multiclass_nms',
           'nms', 'soft_nms']
