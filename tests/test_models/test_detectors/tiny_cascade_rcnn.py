"""A Cascade (Mask) R-CNN small enough for unit tests: the tiny Faster R-CNN of
tiny_faster_rcnn.py with three class-agnostic box heads (IoU thresholds 0.5, 0.6, 0.7
and target_stds as MMDetection's Cascade R-CNN) and, with masks, an FCNMaskHead per stage."""
import copy

from tiny_faster_rcnn import tiny_config as tiny_faster_rcnn_config

STAGE_TARGET_STDS = ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1],
                     [0.033, 0.033, 0.067, 0.067])
STAGE_IOU_THRS = (0.5, 0.6, 0.7)


def tiny_config(with_mask: bool = False) -> dict:
    cfg = tiny_faster_rcnn_config()
    cfg['type'] = 'CascadeRCNN'
    roi_head = cfg['roi_head']
    bbox_head = roi_head.pop('bbox_head')
    roi_head.update(
        type='CascadeRoIHead', num_stages=3, stage_loss_weights=[1, 0.5, 0.25],
        bbox_head=[
            dict(bbox_head, reg_class_agnostic=True,
                 bbox_coder=dict(bbox_head['bbox_coder'], target_stds=stds),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in STAGE_TARGET_STDS])
    rcnn = cfg['train_cfg']['rcnn']
    cfg['train_cfg']['rcnn'] = [
        dict(copy.deepcopy(rcnn), assigner=dict(rcnn['assigner'], pos_iou_thr=thr,
                                                neg_iou_thr=thr, min_pos_iou=thr))
        for thr in STAGE_IOU_THRS]
    if with_mask:
        roi_head['mask_roi_extractor'] = dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=16, featmap_strides=[4, 8, 16, 32])
        roi_head['mask_head'] = dict(
            type='FCNMaskHead', num_convs=2, in_channels=16, conv_out_channels=16,
            num_classes=3,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))
        for stage_cfg in cfg['train_cfg']['rcnn']:
            stage_cfg['mask_size'] = 28
        cfg['test_cfg']['rcnn']['mask_thr_binary'] = 0.5
    return copy.deepcopy(cfg)
