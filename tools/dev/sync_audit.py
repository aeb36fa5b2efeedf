"""Where a detector's train step would make the host wait for a GPU, found on the CPU.

Builds CONFIG's model (random initial weights), runs ``model.loss`` on a random batch of
CPU tensors (2 images, a few boxes each) under ``detlab.utils.host_sync.SyncRecorder`` and
prints each op that would synchronise host and device on CUDA (values read back, outputs
whose size depends on the values: nonzero, boolean-mask indexing, ...) with the detlab line
it runs from and how often. Where detlab takes another path on the CPU than on CUDA, the
CUDA path is switched on for the run, so the report is about what runs on a GPU:

- the batched assigners' candidate-column compaction (CPU only) is off;
- ATSS assigns the whole batch at once (image by image on the CPU);
- FCOS's and ATSS's box losses and YOLOX's losses over the positives run over every prior
  (they gather the positives on the CPU);
- RTMDet's box loss runs over every point and ``QualityFocalLoss`` gathers each row's label
  column (both gather the positives with ``nonzero`` on the CPU); RTMDet-Ins's mask loss
  runs over a fixed number of slots (it gathers the positives on the CPU);
- ``FocalLoss`` takes its fused loss (CUDA's);
- the losses' early exit for all-zero weights (CPU only) is skipped;
- an anchor head's RandomSampler (the RPN's) draws the whole batch at once, R-CNN's
  RandomSampler fills a fixed number of slots per image, its box loss runs over every
  sampled RoI and ``SingleRoIExtractor`` pools every RoI on every level (they gather on
  the CPU); the RPN's NMS removes the small proposals itself (filtered first on the CPU).

Each box comes with a mask (its rectangle, ``BitmapMasks``), for detectors that train on
masks; detectors whose loss needs semantic maps are not covered. Not run by CI::

    python tools/dev/sync_audit.py CONFIG [CONFIG ...] [--size 256] [--host-tensors]

``--host-tensors`` also lists the tensors made from host values (``torch.tensor``,
``new_tensor``: ``aten.lift_fresh``), which a GPU run copies to the device, making the host
wait; tensors made on the CPU on purpose show too (the CPU run cannot tell them apart), and
so do those a module makes once and keeps (the model is new).
"""
import argparse
import importlib
import logging
from contextlib import ExitStack
from unittest import mock

import numpy as np
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.mask import BitmapMasks
from detlab.utils import register_all_modules
from detlab.utils.host_sync import SyncRecorder


def cuda_paths() -> ExitStack:
    """A context in which detlab's CPU-only branches take their CUDA paths."""
    stack = ExitStack()
    assigners = 'detlab.models.task_modules.assigners.'
    real = importlib.import_module(assigners + 'assign_result').candidate_columns
    for module in ('assign_result', 'dynamic_soft_label_assigner', 'sim_ota_assigner'):
        stack.enter_context(mock.patch(assigners + module + '.candidate_columns',
                                       lambda candidate, compact=True: real(candidate, False)))
    atss = importlib.import_module(assigners + 'atss_assigner').ATSSAssigner
    stack.enter_context(mock.patch.object(
        atss, 'can_assign_batch', lambda self, gts, ignores=None: self.alpha is None))
    for head in ('atss_head', 'fcos_head', 'yolox_head'):
        stack.enter_context(mock.patch(f'detlab.models.dense_heads.{head}.gathers_positives',
                                       lambda tensor: False))
    for module in ('dense_heads.rtmdet_head', 'dense_heads.rtmdet_ins_head', 'losses.gfocal_loss',
                   'dense_heads.anchor_head', 'dense_heads.base_dense_head',
                   'roi_heads.bbox_heads.bbox_head', 'roi_heads.standard_roi_head',
                   'roi_heads.roi_extractors.single_level_roi_extractor'):
        stack.enter_context(mock.patch(f'detlab.models.{module}.gathers_positives',
                                       lambda tensor: False))
    stack.enter_context(mock.patch('detlab.models.losses.focal_loss.fused_focal_loss_on',
                                   lambda pred: True))
    for module in ('smooth_l1_loss', 'iou_loss'):
        stack.enter_context(mock.patch(f'detlab.models.losses.{module}.weights_all_zero',
                                       lambda weight: False))
    return stack


def random_batch(size: int, num_classes: int, seed: int = 0):
    """Normalised (2, 3, size, size) inputs and 2 samples with 3 boxes each, each
    box's mask its rectangle."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(2, 3, size, size, generator=generator)
    samples = []
    for _ in range(2):
        xy = torch.rand(3, 2, generator=generator) * size * 0.6
        wh = 16 + torch.rand(3, 2, generator=generator) * size * 0.3
        sample = DetDataSample(metainfo=dict(
            img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
            batch_input_shape=(size, size), scale_factor=(1.0, 1.0)))
        bboxes = torch.cat([xy, xy + wh], 1)
        masks = np.zeros((3, size, size), dtype=np.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, bboxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(
            bboxes=bboxes, labels=torch.randint(0, num_classes, (3, ), generator=generator),
            masks=BitmapMasks(masks, size, size))
        samples.append(sample)
    return inputs, samples


def num_classes_of(model) -> int:
    head = getattr(model, 'bbox_head', None) or getattr(model, 'rpn_head', None)
    return int(getattr(head, 'num_classes', 1))


def audit(config: str, size: int, host_tensors: bool = False) -> SyncRecorder:
    cfg = Config.fromfile(config)
    model_cfg = cfg.model
    model_cfg.pop('data_preprocessor', None)  # the batch comes normalised
    if 'backbone' in model_cfg:
        model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg)
    model.train()
    inputs, samples = random_batch(size, num_classes_of(model))
    also = {'aten.lift_fresh'} if host_tensors else set()
    with cuda_paths(), SyncRecorder(also=also) as recorder:
        model.loss(inputs, samples)
    return recorder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
    parser.add_argument('--size', type=int, default=256, help='square input size')
    parser.add_argument('--host-tensors', action='store_true',
                        help='also list tensors made from host values (aten.lift_fresh)')
    args = parser.parse_args()
    register_all_modules()
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    for config in args.configs:
        recorder = audit(config, args.size, args.host_tensors)
        print(f'{config}: {sum(recorder.sites.values())} syncing ops in one train step'
              + ('' if recorder.sites else ' (none)'))
        for (name, site), count in sorted(recorder.sites.items(), key=lambda item: item[0][1]):
            print(f'  {count:4d} x {name:28s} {site}')


if __name__ == '__main__':
    main()
