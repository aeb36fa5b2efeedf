"""A Mask R-CNN small enough for unit tests, and two coco128 photos with masks made
from their boxes (coco128 has boxes only): each object is the ellipse inscribed in
its box, as a polygon (first image) or a bitmap (second image)."""
import copy
import json
from pathlib import Path

import mmcv
import numpy as np
import torch

from tiny_faster_rcnn import tiny_config as tiny_faster_rcnn_config

#: coco128 images used (ids): 8 and 9 objects, landscape and portrait.
IMAGE_IDS = (9, 49)
#: Longer and shorter side the photos are rescaled to fit (keeping the aspect ratio).
SCALE = (224, 160)
MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
ELLIPSE_VERTICES = 24


def tiny_config(share_roi_extractor: bool = False) -> dict:
    """The tiny Faster R-CNN of tiny_faster_rcnn.py with an FCNMaskHead."""
    cfg = tiny_faster_rcnn_config()
    cfg['type'] = 'MaskRCNN'
    roi_head = cfg['roi_head']
    if not share_roi_extractor:
        roi_head['mask_roi_extractor'] = dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=16, featmap_strides=[4, 8, 16, 32])
    roi_head['mask_head'] = dict(
        type='FCNMaskHead', num_convs=2, in_channels=16, conv_out_channels=16, num_classes=3,
        loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))
    cfg['train_cfg']['rcnn']['mask_size'] = 28 if not share_roi_extractor else 14
    cfg['test_cfg']['rcnn']['mask_thr_binary'] = 0.5
    return copy.deepcopy(cfg)


def ellipse_polygon(box) -> np.ndarray:
    """Flat (2k,) polygon of the ellipse inscribed in an x1, y1, x2, y2 box."""
    x1, y1, x2, y2 = box
    angles = np.linspace(0, 2 * np.pi, ELLIPSE_VERTICES, endpoint=False)
    xs = (x1 + x2) / 2 + (x2 - x1) / 2 * np.cos(angles)
    ys = (y1 + y2) / 2 + (y2 - y1) / 2 * np.sin(angles)
    return np.stack([xs, ys], axis=1).reshape(-1)


def coco128_batch(coco128: Path, num_classes: int = 3, image_ids=IMAGE_IDS, scale=SCALE):
    """Normalised (B, 3, H, W) inputs and plain per-image annotations.

    Returns:
        tuple: ``inputs`` and a list of dicts with ``metainfo``, ``bboxes``
        (n, 4) float32 in the rescaled image, ``labels`` (n,) (category
        index modulo ``num_classes``), ``polygons`` (one ellipse polygon per
        object) and ``bitmaps`` (n, H, W) uint8 (the polygons rasterised on
        the padded image). Both frameworks' samples are made from these.
    """
    from detlab.structures.mask import polygon_to_bitmap
    data = json.loads((coco128 / 'annotations/instances_train2017.json').read_text())
    cat_index = {cat['id']: i for i, cat in enumerate(data['categories'])}
    images = {img['id']: img for img in data['images']}
    pixels, annotations = [], []
    for image_id in image_ids:
        info = images[image_id]
        img = mmcv.imread(str(coco128 / 'images/train2017' / info['file_name']))
        resized = mmcv.imrescale(img, scale)
        h_scale = resized.shape[0] / img.shape[0]
        w_scale = resized.shape[1] / img.shape[1]
        anns = [a for a in data['annotations'] if a['image_id'] == image_id]
        boxes = np.array([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                           a['bbox'][1] + a['bbox'][3]] for a in anns], dtype=np.float32)
        boxes *= np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        pixels.append(resized)
        annotations.append(dict(
            metainfo=dict(img_id=image_id, ori_shape=img.shape[:2], img_shape=resized.shape[:2],
                          scale_factor=(w_scale, h_scale)),
            bboxes=boxes,
            labels=np.array([cat_index[a['category_id']] % num_classes for a in anns]),
            polygons=[[ellipse_polygon(box.astype(np.float64))] for box in boxes]))
    pad_h = int(np.ceil(max(p.shape[0] for p in pixels) / 32) * 32)
    pad_w = int(np.ceil(max(p.shape[1] for p in pixels) / 32) * 32)
    inputs = torch.zeros(len(pixels), 3, pad_h, pad_w)
    for i, (img, ann) in enumerate(zip(pixels, annotations)):
        rgb = (img[..., ::-1].astype(np.float32) - MEAN) / STD
        inputs[i, :, :img.shape[0], :img.shape[1]] = torch.from_numpy(rgb).permute(2, 0, 1)
        ann['metainfo'].update(pad_shape=(pad_h, pad_w), batch_input_shape=(pad_h, pad_w))
        ann['bitmaps'] = np.stack([polygon_to_bitmap(p, pad_h, pad_w) for p in ann['polygons']
                                   ]).astype(np.uint8)
    return inputs, annotations


def samples_from(annotations, sample_type, instance_type, bitmap_type, polygon_type):
    """Data samples of one framework: image 0 with polygon masks, the others with bitmaps."""
    samples = []
    for i, ann in enumerate(annotations):
        sample = sample_type(metainfo=ann['metainfo'])
        pad_h, pad_w = ann['metainfo']['pad_shape']
        masks = (polygon_type(copy.deepcopy(ann['polygons']), pad_h, pad_w) if i == 0 else
                 bitmap_type(ann['bitmaps'].copy(), pad_h, pad_w))
        sample.gt_instances = instance_type(bboxes=torch.from_numpy(ann['bboxes'].copy()),
                                            labels=torch.from_numpy(ann['labels']).long(),
                                            masks=masks)
        samples.append(sample)
    return samples


def detlab_samples(annotations):
    from mmengine.structures import InstanceData

    from detlab.structures import DetDataSample
    from detlab.structures.mask import BitmapMasks, PolygonMasks
    return samples_from(annotations, DetDataSample, InstanceData, BitmapMasks, PolygonMasks)
