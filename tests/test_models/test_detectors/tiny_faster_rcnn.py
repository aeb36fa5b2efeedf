"""A Faster R-CNN small enough for unit tests (MMDetection's config keys)."""
import copy

import torch
from mmengine.structures import InstanceData

from detlab.structures import DetDataSample

TINY_FASTER_RCNN = dict(
    type='FasterRCNN',
    backbone=dict(type='ResNet', depth=18, base_channels=8, num_stages=4,
                  out_indices=(0, 1, 2, 3), frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5),
    rpn_head=dict(
        type='RPNHead', in_channels=16, feat_channels=16,
        anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                              strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                out_channels=16, featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32, roi_feat_size=7,
            num_classes=3,
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                            target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3,
                          min_pos_iou=0.3, match_low_quality=True, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                         add_gt_as_proposals=False),
            allowed_border=-1, pos_weight=-1, debug=False),
        rpn_proposal=dict(nms_pre=2000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                          min_bbox_size=0),
        rcnn=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5,
                          min_pos_iou=0.5, match_low_quality=False, ignore_iof_thr=-1),
            sampler=dict(type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
                         add_gt_as_proposals=True),
            pos_weight=-1, debug=False)),
    test_cfg=dict(
        rpn=dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                 min_bbox_size=0),
        rcnn=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)))

#: Boxes and labels of the two test images (the second has no gt).
GT_BOXES = [[[8., 6., 40., 50.], [30., 20., 90., 60.]], []]
GT_LABELS = [[1, 2], []]
IMG_SHAPE = (64, 96)


def tiny_config() -> dict:
    return copy.deepcopy(TINY_FASTER_RCNN)


def inputs_and_samples(sample_type=DetDataSample):
    """(2, 3, 64, 96) normalised-looking inputs (seed 0) and their data samples."""
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 3, *IMG_SHAPE, generator=generator)
    samples = []
    for boxes, labels in zip(GT_BOXES, GT_LABELS):
        sample = sample_type(metainfo=dict(img_shape=IMG_SHAPE, pad_shape=IMG_SHAPE,
                                           ori_shape=(32, 48), scale_factor=(2.0, 2.0),
                                           batch_input_shape=IMG_SHAPE))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor(labels, dtype=torch.long))
        samples.append(sample)
    return inputs, samples
