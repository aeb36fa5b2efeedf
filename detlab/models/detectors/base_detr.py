"""DetectionTransformer: the skeleton every DETR-family detector fills in.

``forward_transformer`` runs ``pre_transformer`` -> ``forward_encoder`` ->
``pre_decoder`` -> ``forward_decoder``; each step returns dicts of keyword
arguments for the next ones and for the head, as in MMDetection 3.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from detlab.registry import MODELS
from detlab.structures import OptSampleList, SampleList
from .base import BaseDetector


def padding_masks(batch_data_samples: SampleList, like: Tensor) -> Optional[Tensor]:
    """(B, H, W) masks of the batch input, 1 at padding; None when no image is padded."""
    if batch_data_samples is None:
        raise ValueError('DETR-family detectors need batch_data_samples (for image shapes)')
    input_img_h, input_img_w = batch_data_samples[0].batch_input_shape
    img_shapes = [sample.img_shape for sample in batch_data_samples]
    if torch.onnx.is_in_onnx_export() or all(
            s[0] == input_img_h and s[1] == input_img_w for s in img_shapes):
        return None
    masks = like.new_ones((len(img_shapes), input_img_h, input_img_w))
    for img_id, (img_h, img_w) in enumerate(img_shapes):
        masks[img_id, :img_h, :img_w] = 0
    return masks


def resize_mask(masks: Tensor, feat: Tensor) -> Tensor:
    """(B, H, W) input mask -> (B, h, w) bool mask of a feature map (nearest)."""
    return F.interpolate(masks[None], size=feat.shape[-2:]).to(torch.bool)[0]


@MODELS.register_module()
class DetectionTransformer(BaseDetector):
    """Backbone, neck, transformer encoder/decoder and a set-prediction head.

    Args:
        backbone (dict): Backbone config.
        neck (dict, optional): Neck config.
        encoder (dict, optional): Encoder arguments (built by the subclass).
        decoder (dict, optional): Decoder arguments.
        bbox_head (dict): Head config; ``train_cfg`` and ``test_cfg`` are
            handed to it (the given configs are not modified).
        positional_encoding (dict, optional): Positional encoding arguments.
        num_queries (int): Decoder queries. Defaults to 100.
        train_cfg, test_cfg (dict, optional): The head's settings.
        data_preprocessor (dict, optional): e.g. ``DetDataPreprocessor``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 encoder: Optional[dict] = None,
                 decoder: Optional[dict] = None,
                 bbox_head: Optional[dict] = None,
                 positional_encoding: Optional[dict] = None,
                 num_queries: int = 100,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if bbox_head is None:
            raise ValueError(f'{type(self).__name__} needs a bbox_head config.')
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.encoder = encoder
        self.decoder = decoder
        self.positional_encoding = positional_encoding
        self.num_queries = num_queries
        self.backbone = MODELS.build(backbone)
        if neck is not None:
            self.neck = MODELS.build(neck)
        self.bbox_head = MODELS.build(dict(bbox_head, train_cfg=train_cfg, test_cfg=test_cfg))
        self._init_layers()

    @property
    def with_neck(self) -> bool:
        return hasattr(self, 'neck') and self.neck is not None

    @abstractmethod
    def _init_layers(self) -> None:
        """Build the layers other than backbone, neck and head."""

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        feats = self.backbone(batch_inputs)
        return self.neck(feats) if self.with_neck else feats

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        head_inputs_dict = self.forward_transformer(self.extract_feat(batch_inputs),
                                                    batch_data_samples)
        return self.bbox_head.loss(**head_inputs_dict, batch_data_samples=batch_data_samples)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        head_inputs_dict = self.forward_transformer(self.extract_feat(batch_inputs),
                                                    batch_data_samples)
        results_list = self.bbox_head.predict(**head_inputs_dict, rescale=rescale,
                                              batch_data_samples=batch_data_samples)
        return self.add_pred_to_datasample(batch_data_samples, results_list)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[List[Tensor]]:
        head_inputs_dict = self.forward_transformer(self.extract_feat(batch_inputs),
                                                    batch_data_samples)
        return self.bbox_head.forward(**head_inputs_dict)

    def forward_transformer(self, img_feats: Tuple[Tensor],
                            batch_data_samples: OptSampleList = None) -> Dict:
        """Features -> the keyword arguments of the head (``hidden_states``, ...)."""
        encoder_inputs_dict, decoder_inputs_dict = self.pre_transformer(img_feats,
                                                                        batch_data_samples)
        encoder_outputs_dict = self.forward_encoder(**encoder_inputs_dict)
        tmp_dec_in, head_inputs_dict = self.pre_decoder(**encoder_outputs_dict)
        decoder_inputs_dict.update(tmp_dec_in)
        head_inputs_dict.update(self.forward_decoder(**decoder_inputs_dict))
        return head_inputs_dict

    @abstractmethod
    def pre_transformer(self, img_feats: Tuple[Tensor],
                        batch_data_samples: OptSampleList = None) -> Tuple[Dict, Dict]:
        """The encoder's inputs (``feat``, ``feat_mask``, ``feat_pos``, ...) and
        the decoder's inputs known before encoding."""

    @abstractmethod
    def forward_encoder(self, feat: Tensor, feat_mask: Tensor, feat_pos: Tensor,
                        **kwargs) -> Dict:
        """The encoder's outputs, at least ``memory`` (B, N, C)."""

    @abstractmethod
    def pre_decoder(self, memory: Tensor, **kwargs) -> Tuple[Dict, Dict]:
        """The decoder's remaining inputs (``query``, ...) and head inputs."""

    @abstractmethod
    def forward_decoder(self, query: Tensor, query_pos: Tensor, memory: Tensor,
                        **kwargs) -> Dict:
        """The head's inputs from the decoder: ``hidden_states`` and more."""
