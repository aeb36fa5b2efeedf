"""StandardRoIHead off the CPU (forced): fixed-size sampling slots, box loss over
every RoI and pooling on every level give the CPU path's losses and gradients
when the same RoIs are drawn."""
import sys

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.mask import BitmapMasks
from detlab.utils import register_all_modules

STRIDES = [4, 8, 16, 32]
#: Modules whose ``gathers_positives`` picks the CPU's path or the one off the CPU.
OFF_CPU_MODULES = ('detlab.models.roi_heads.standard_roi_head',
                   'detlab.models.roi_heads.bbox_heads.bbox_head',
                   'detlab.models.roi_heads.roi_extractors.single_level_roi_extractor')


def roi_head(num: int, with_mask: bool, share: bool = False):
    register_all_modules()
    extractor = dict(type='SingleRoIExtractor', out_channels=8, featmap_strides=STRIDES,
                     roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0))
    cfg = dict(
        type='StandardRoIHead', bbox_roi_extractor=extractor,
        bbox_head=dict(type='Shared2FCBBoxHead', in_channels=8, fc_out_channels=16,
                       roi_feat_size=7, num_classes=3),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                                     min_pos_iou=0.5, match_low_quality=False),
                       sampler=dict(type='RandomSampler', num=num, pos_fraction=0.5),
                       pos_weight=-1, mask_size=14))
    if with_mask:
        if not share:
            cfg['mask_roi_extractor'] = dict(extractor, roi_layer=dict(
                type='RoIAlign', output_size=14, sampling_ratio=0))
        cfg['mask_head'] = dict(type='FCNMaskHead', num_convs=1, in_channels=8,
                                conv_out_channels=8, num_classes=3)
        cfg['train_cfg']['mask_size'] = 14 if share else 28
    torch.manual_seed(0)
    return MODELS.build(cfg)


def batch(generator):
    """Features of two 64 x 64 images; image 0 has 3 gts (with masks), image 1 none."""
    feats = [torch.randn(2, 8, 64 // s, 64 // s, generator=generator).requires_grad_()
             for s in STRIDES]
    gt_boxes = torch.tensor([[4., 6., 30., 40.], [20., 10., 60., 50.], [40., 30., 52., 44.]])
    masks = np.zeros((3, 64, 64), dtype=np.uint8)
    for mask, (x1, y1, x2, y2) in zip(masks, gt_boxes.int().tolist()):
        mask[y1:y2, x1:x2] = 1
    samples, proposals = [], []
    for image, boxes in enumerate((gt_boxes, gt_boxes[:0])):
        sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 2, 1])[:len(boxes)],
                                           masks=BitmapMasks(masks[:len(boxes)], 64, 64))
        samples.append(sample)
        # Proposals: jittered gts (positives) and random boxes (mostly negatives).
        xy = torch.rand(30, 2, generator=generator) * 40
        random_boxes = torch.cat([xy, xy + 6 + torch.rand(30, 2, generator=generator) * 30], 1)
        jitter = gt_boxes + torch.randn(3, 4, generator=generator)
        proposals.append(InstanceData(bboxes=torch.cat([jitter, random_boxes])))
    return feats, proposals, samples


def losses_and_grads(monkeypatch, head, off_cpu: bool):
    for name in OFF_CPU_MODULES:
        monkeypatch.setattr(sys.modules[name], 'gathers_positives', lambda tensor: not off_cpu)
    feats, proposals, samples = batch(torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    losses = head.loss(feats, proposals, samples)
    total = sum(value for name, value in losses.items() if name.startswith('loss'))
    grads = torch.autograd.grad(total, feats + list(head.parameters()), allow_unused=True)
    return {name: value.detach() for name, value in losses.items()}, grads


@pytest.mark.parametrize('with_mask, share', [(False, False), (True, False), (True, True)])
def test_slots_give_the_losses_and_gradients_of_the_cpu_path(monkeypatch, with_mask, share):
    """With ``num`` above the candidates' count both paths draw every
    candidate: the same losses (1e-6) and gradients (1e-5), although the slot
    path runs ``num`` RoIs per image, most of them unused."""
    head = roi_head(num=64, with_mask=with_mask, share=share)
    gathered, gathered_grads = losses_and_grads(monkeypatch, head, off_cpu=False)
    slots, slot_grads = losses_and_grads(monkeypatch, head, off_cpu=True)
    assert set(slots) == set(gathered) == ({'loss_cls', 'acc', 'loss_bbox'}
                                           | ({'loss_mask'} if with_mask else set()))
    for name, value in gathered.items():
        assert torch.allclose(slots[name], value, rtol=1e-6, atol=1e-7), name
    assert gathered['loss_bbox'] > 0
    for gathered_grad, slot_grad in zip(gathered_grads, slot_grads):
        if gathered_grad is None:
            assert slot_grad is None or not slot_grad.any()
        else:
            assert torch.allclose(slot_grad, gathered_grad, rtol=1e-5, atol=1e-7)


def test_slot_path_box_branch_runs_no_syncing_op(monkeypatch):
    """Assignment, slot sampling, pooling and the box losses: nothing waits
    for the device (the mask branch, which gathers its positives, aside)."""
    from helpers import record_syncing_ops
    head = roi_head(num=16, with_mask=False)
    for name in OFF_CPU_MODULES:
        monkeypatch.setattr(sys.modules[name], 'gathers_positives', lambda tensor: False)
    monkeypatch.setattr(sys.modules['detlab.models.losses.smooth_l1_loss'], 'weights_all_zero',
                        lambda weight: False)
    feats, proposals, samples = batch(torch.Generator().manual_seed(5))
    with record_syncing_ops() as ops:
        losses = head.loss(feats, proposals, samples)
    assert not ops.syncing
    assert losses['loss_bbox'] > 0 and losses['loss_cls'] > 0
