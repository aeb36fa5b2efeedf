# Quickstart: a small Faster R-CNN trained from scratch on the built-in shapes
# data, on a CPU (bbox mAP 0.667 after its 600 iterations):
#   python tools/train.py configs/quickstart/faster-rcnn_r18_fpn_shapes.py
# Compared with the COCO recipe it uses a half-width ResNet-18 (no ImageNet
# weights: detlab downloads nothing), a 64-channel FPN on strides 8-32, RPN
# anchors sized for 12-64 px objects, fewer proposals and sampled RoIs, a
# 256-wide box head, AdamW with a cosine schedule, and 192 px images.
_base_ = [
    '../_base_/models/faster-rcnn_r50_fpn.py',
    '../_base_/datasets/shapes_detection.py',
    '../_base_/default_runtime.py'
]

max_iters = 600
model = dict(
    backbone=dict(
        depth=18,
        base_channels=32,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256], out_channels=64, num_outs=3),
    rpn_head=dict(
        in_channels=64,
        feat_channels=64,
        anchor_generator=dict(scales=[2, 4], strides=[8, 16, 32])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64, featmap_strides=[8, 16, 32]),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=300),
        rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=300)))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=2e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(type='DetLoggerHook', interval=50),
    checkpoint=dict(type='DetCheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=3),
    visualization=dict(type='DetVisualizationHook', draw=True, interval=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
randomness = dict(seed=0)
