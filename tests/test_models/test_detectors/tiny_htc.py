"""A Hybrid Task Cascade small enough for unit tests: the tiny Cascade Mask R-CNN of
tiny_cascade_rcnn.py with HTCMaskHeads (mask information flow) and, optionally, a
FusedSemanticHead; and a synthetic semantic map for the coco128 photos of
tiny_mask_rcnn.py (coco128 has no stuff maps)."""
import copy

import numpy as np
import torch
from mmengine.structures import PixelData

from tiny_cascade_rcnn import tiny_config as tiny_cascade_config

#: Semantic classes of the synthetic maps: 1..3 the objects' labels + 1, 4..7 "stuff".
NUM_SEG_CLASSES = 8
SEG_IGNORE = 255


def tiny_config(with_semantic: bool = True) -> dict:
    cfg = tiny_cascade_config(with_mask=True)
    cfg['type'] = 'HybridTaskCascade'
    roi_head = cfg['roi_head']
    roi_head.update(type='HybridTaskCascadeRoIHead', interleaved=True, mask_info_flow=True)
    mask_head = roi_head['mask_head']
    roi_head['mask_head'] = [dict(mask_head, type='HTCMaskHead', with_conv_res=stage > 0)
                             for stage in range(3)]
    if with_semantic:
        roi_head['semantic_roi_extractor'] = dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=16, featmap_strides=[8])
        roi_head['semantic_head'] = dict(
            type='FusedSemanticHead', num_ins=5, fusion_level=1, seg_scale_factor=1 / 8,
            num_convs=2, in_channels=16, conv_out_channels=16, num_classes=NUM_SEG_CLASSES,
            loss_seg=dict(type='CrossEntropyLoss', ignore_index=SEG_IGNORE, loss_weight=0.2))
    return copy.deepcopy(cfg)


def semantic_map(annotation: dict) -> np.ndarray:
    """(H, W) uint8 map on the padded image: 16-pixel diagonal bands of stuff classes
    4..7, each object's ellipse filled with its label + 1 (later objects on top) and
    the padding SEG_IGNORE, as DetDataPreprocessor(pad_seg=True) pads."""
    pad_h, pad_w = annotation['metainfo']['pad_shape']
    img_h, img_w = annotation['metainfo']['img_shape']
    ys, xs = np.mgrid[:pad_h, :pad_w]
    seg = ((ys // 16 + xs // 16) % 4 + 4).astype(np.uint8)
    for bitmap, label in zip(annotation['bitmaps'], annotation['labels']):
        seg[bitmap.astype(bool)] = label + 1
    seg[img_h:, :] = SEG_IGNORE
    seg[:, img_w:] = SEG_IGNORE
    return seg


def with_semantic_maps(samples, annotations):
    """``samples`` with ``gt_sem_seg`` (PixelData, (1, H, W) uint8) from semantic_map()."""
    for sample, annotation in zip(samples, annotations):
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.from_numpy(semantic_map(annotation))[None])
    return samples
