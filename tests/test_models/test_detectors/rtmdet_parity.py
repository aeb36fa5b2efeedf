"""What the RTMDet parity test and tools/dev/measure_rtmdet.py share: the
weights both models get and the batch both see, so that the numbers measured
on MMDetection and the test on detlab describe the same computation.

* Weights: every entry of the model's state_dict drawn from one seeded
  generator, in state_dict order (convs N(0, 1/fan_in), BN affine and running
  parameters near their neutral values, predictor biases that give varied
  scores and boxes a few strides wide), the BatchNorm running statistics then
  set from the batch, and the state_dict read back (the shared convs of
  RTMDetSepBNHead keep the value loaded last).
* Batch: coco128 photos resized to fit SIZE x SIZE (aspect kept, as
  ``Resize(keep_ratio=True)``), padded with 114 to SIZE x SIZE, normalised with
  RTMDet's mean and std (BGR kept), with their gt boxes scaled alike.
* EMA: the averaged weights of an ExpMomentumEMA after 50 seeded updates.
"""
import json
from pathlib import Path
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.structures import InstanceData

from detlab.structures.mask import polygon_to_bitmap
from tiny_mask_rcnn import ellipse_polygon

#: The parity cases: MMDetection's config file under tests/data/mmdet_3.3_configs/rtmdet/.
CONFIGS = {'tiny': 'rtmdet_tiny_8xb32-300e_coco.py', 's': 'rtmdet_s_8xb32-300e_coco.py',
           'tiny-rtmdethead': 'rtmdet_tiny_8xb32-300e_coco.py'}
#: RTMDet-Ins parity cases (their gts also carry masks, see ``parity_samples``).
INS_CONFIGS = {'ins-tiny': 'rtmdet-ins_tiny_8xb32-300e_coco.py'}
#: RTMDet-tiny with MMDetection's RTMDetHead (towers shared by the levels, GroupNorm,
#: objectness, exp on the distances) in place of RTMDetSepBNHead.
SHARED_HEAD_VARIANTS = {
    'tiny-rtmdethead': dict(type='RTMDetHead', with_objectness=True, pred_kernel_size=3,
                            norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))}
#: RTMDet's DetDataPreprocessor settings (BGR input, no channel swap).
MEAN = (103.53, 116.28, 123.675)
STD = (57.375, 57.12, 58.395)
PAD_VALUE = 114
#: coco128 photos of the parity batch: landscape and portrait, 8 and 9 boxes of 3 classes each.
IMAGE_FILES = ('000000000009.jpg', '000000000049.jpg')


def parity_model_cfg(repo: Path, name: str) -> ConfigDict:
    """The model config of parity case ``name`` (no ImageNet weights, no preprocessor: the
    batch comes normalised)."""
    file_name = {**CONFIGS, **INS_CONFIGS}[name]
    cfg = Config.fromfile(str(repo / 'tests/data/mmdet_3.3_configs/rtmdet' / file_name))
    model = cfg.model
    model.backbone.init_cfg = None
    model.pop('data_preprocessor')
    if name in SHARED_HEAD_VARIANTS:
        for key in ('exp_on_reg', 'share_conv', 'use_depthwise'):
            model.bbox_head.pop(key, None)
        model.bbox_head.update(SHARED_HEAD_VARIANTS[name])
    return model


def parity_state_dict(model: torch.nn.Module, inputs: torch.Tensor, seed: int = 0) -> dict:
    """Load the seeded weights described above into ``model``, its BatchNorm statistics
    from ``inputs``; return its state_dict."""
    return seeded_state_dict(model, inputs, reg_key='rtm_reg',
                             head_rules=(('rtm_cls', 0.5, -2.0), ('rtm_reg', 0.2, 1.5),
                                         ('.scale', 0.05, 1.0)), seed=seed)


def seeded_state_dict(model: torch.nn.Module, inputs: torch.Tensor, reg_key: str,
                      head_rules: tuple, seed: int = 0) -> dict:
    """Draw every floating entry of ``model``'s state_dict from one seeded generator, in
    state_dict order, load it, set the BatchNorm statistics from ``inputs`` and return the
    state_dict.

    Convs are N(0, 1/fan_in) (times 0.3 for keys holding ``reg_key``), BN running statistics
    near neutral; the other entries take the first of ``head_rules``, rows of (key part,
    scale, shift) whose key part the key holds, else N(1, 0.1) weights and N(0, 0.1) biases.
    """
    generator = torch.Generator().manual_seed(seed)

    def draw(shape, scale=1.0, shift=0.0):
        return torch.randn(shape, generator=generator) * scale + shift

    weights = {}
    for key, value in model.state_dict().items():
        rule = next((rule for rule in head_rules if rule[0] in key), None)
        if not value.is_floating_point():
            weights[key] = value
        elif key.endswith('running_var'):
            weights[key] = torch.rand(value.shape, generator=generator) * 0.5 + 0.75
        elif key.endswith('running_mean'):
            weights[key] = draw(value.shape, 0.1)
        elif value.dim() == 4:
            fan_in = value[0].numel()
            weights[key] = draw(value.shape, (0.3 if reg_key in key else 1.0) * fan_in ** -0.5)
        elif rule is not None:
            weights[key] = draw(value.shape, rule[1], rule[2])
        elif key.endswith('.weight'):
            weights[key] = draw(value.shape, 0.1, 1.0)
        else:
            weights[key] = draw(value.shape, 0.1)
    model.load_state_dict(weights, strict=True)
    calibrate_batch_norms(model, inputs)
    return {key: value.clone() for key, value in model.state_dict().items()}


def calibrate_batch_norms(model: torch.nn.Module, inputs: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of ``inputs``' features (one
    forward in train mode with cumulative averaging), so that eval mode keeps features at
    unit scale and the detections vary over the image."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model._forward(inputs)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum


def coco128_batch(coco128: Path, size: int) -> Tuple[torch.Tensor, List[dict], list]:
    """The normalised (B, 3, size, size) batch, each image's metainfo, and its
    gts as (bboxes (K, 4) float32 in the resized image's pixels, labels (K,))."""
    annotations = json.loads((coco128 / 'annotations/instances_train2017.json').read_text())
    label_of = {cat['id']: i for i, cat in enumerate(sorted(annotations['categories'],
                                                            key=lambda cat: cat['id']))}
    images = {img['file_name']: img for img in annotations['images']}
    inputs, metas, gts = [], [], []
    for name in IMAGE_FILES:
        image_info = images[name]
        img = mmcv.imread(str(coco128 / 'images/train2017' / name))
        height, width = img.shape[:2]
        resized = mmcv.imrescale(img, (size, size))
        new_h, new_w = resized.shape[:2]
        scale = np.array([new_w / width, new_h / height, new_w / width, new_h / height],
                         dtype=np.float32)
        padded = mmcv.impad(resized, shape=(size, size), pad_val=PAD_VALUE)
        tensor = torch.from_numpy(padded).permute(2, 0, 1).float()
        mean, std = torch.tensor(MEAN)[:, None, None], torch.tensor(STD)[:, None, None]
        inputs.append((tensor - mean) / std)
        anns = [ann for ann in annotations['annotations'] if ann['image_id'] == image_info['id']]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                         dtype=np.float32).reshape(-1, 4) * scale
        gts.append((torch.from_numpy(boxes), torch.tensor([label_of[a['category_id']]
                                                           for a in anns])))
        metas.append(dict(img_shape=(new_h, new_w), pad_shape=(size, size),
                          ori_shape=(height, width), batch_input_shape=(size, size),
                          scale_factor=(new_w / width, new_h / height)))
    return torch.stack(inputs), metas, gts


def parity_samples(sample_type: type, metas: List[dict], gts: list,
                   mask_types: Optional[Tuple[type, type]] = None) -> list:
    """Data samples (of ``sample_type``: detlab's or MMDetection's DetDataSample) with
    tensor gt boxes, as MMDetection's DetDataPreprocessor (``boxtype2tensor``) hands them
    to the model.

    With ``mask_types`` (that framework's ``(BitmapMasks, PolygonMasks)``) each object
    also gets the ellipse inscribed in its box as its mask, of the padded batch's size:
    polygons on the first image, their rasterised bitmaps on the others.
    """
    samples = []
    for i, (meta, (bboxes, labels)) in enumerate(zip(metas, gts)):
        sample = sample_type(metainfo=meta)
        sample.gt_instances = InstanceData(bboxes=bboxes.clone(), labels=labels.clone())
        if mask_types is not None:
            bitmap_type, polygon_type = mask_types
            height, width = meta['batch_input_shape']
            polygons = [[ellipse_polygon(box)] for box in bboxes.double().numpy()]
            if i == 0:
                masks = polygon_type(polygons, height, width)
            else:
                bitmaps = [polygon_to_bitmap(p, height, width) for p in polygons]
                masks = bitmap_type(np.stack(bitmaps).astype(np.uint8).reshape(-1, height, width),
                                    height, width)
            sample.gt_instances.masks = masks
        samples.append(sample)
    return samples


def assert_detections_equal(results: list, expected_detections: list) -> None:
    """Each image's detections (DetDataSamples) equal the measured ones: count, score sum
    (relative 1e-5), and the top ones' labels, scores (1e-6) and boxes (1e-3 px)."""
    for result, expected in zip(results, expected_detections, strict=True):
        pred = result.pred_instances
        assert len(pred) == expected['num']
        assert pred.scores.sum().item() == pytest.approx(expected['score_sum'], rel=1e-5)
        top = len(expected['labels'])
        assert pred.labels[:top].tolist() == expected['labels']
        assert torch.allclose(pred.scores[:top], torch.tensor(expected['scores']), atol=1e-6)
        assert torch.allclose(pred.bboxes[:top], torch.tensor(expected['boxes']), atol=1e-3)


def ema_updates(ema_type, steps=50):
    """The averaged weights of ``ema_type`` (gamma=20, update_buffers) after ``steps`` updates
    of a small conv + BN whose weights take seeded random steps."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    ema = ema_type(model, momentum=0.0002, gamma=20, update_buffers=True)
    for _ in range(steps):
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.add_(torch.randn_like(tensor) * 0.1)
        ema.update_parameters(model)
    return {key: value.reshape(-1)[:3].tolist() + [float(value.float().sum())]
            for key, value in ema.module.state_dict().items()}
