# Quickstart: a YOLOv3 with a MobileNetV2 backbone trained from scratch on the built-in
# shapes data, on a CPU, at a 192 x 192 input:
#   python tools/train.py configs/quickstart/yolov3_mobilenetv2_shapes.py
# Compared with MMDetection's YOLOv3-MobileNetV2 recipe: MobileNetV2 at half width (no
# ImageNet weights: detlab downloads nothing), a 64-channel neck and head, anchors
# sized for 12-128 px objects, no Expand/MinIoURandomCrop, AdamW with a cosine schedule.
_base_ = [
    '../_base_/datasets/shapes_detection.py',
    '../_base_/default_runtime.py'
]

input_size = 192
max_iters = 1200  # about 6 CPU-minutes on one core, data and evaluation included
data_preprocessor = dict(
    type='DetDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_size_divisor=32)
model = dict(
    type='YOLOV3',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='MobileNetV2',
        widen_factor=0.5,
        out_indices=(2, 4, 6),
        act_cfg=dict(type='LeakyReLU', negative_slope=0.1)),
    neck=dict(
        type='YOLOV3Neck',
        num_scales=3,
        in_channels=[160, 48, 16],
        out_channels=[64, 64, 64]),
    bbox_head=dict(
        type='YOLOV3Head',
        num_classes=3,
        in_channels=[64, 64, 64],
        out_channels=[64, 64, 64],
        anchor_generator=dict(
            type='YOLOAnchorGenerator',
            base_sizes=[[(72, 72), (64, 112), (112, 64)],
                        [(36, 36), (32, 56), (56, 32)],
                        [(16, 16), (16, 28), (28, 16)]],
            strides=[32, 16, 8]),
        bbox_coder=dict(type='YOLOBBoxCoder'),
        featmap_strides=[32, 16, 8],
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0,
                      reduction='sum'),
        loss_conf=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0,
                       reduction='sum'),
        loss_xy=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=2.0,
                     reduction='sum'),
        loss_wh=dict(type='MSELoss', loss_weight=2.0, reduction='sum')),
    train_cfg=dict(
        assigner=dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0)),
    test_cfg=dict(
        nms_pre=1000,
        min_bbox_size=0,
        score_thr=0.05,
        conf_thr=0.005,
        nms=dict(type='nms', iou_threshold=0.45),
        max_per_img=100))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
# Iteration-based: one endless shuffled stream (no end-of-epoch restarts).
train_dataloader = dict(
    batch_size=8,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# The losses are sums over the batch (as MMDetection's recipe); AdamW's steps do not
# depend on that scale, the clipping threshold does.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.003, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=3e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(type='DetLoggerHook', interval=50),
    checkpoint=dict(type='DetCheckpointHook', by_epoch=False, interval=400, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=True, interval=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
randomness = dict(seed=0)
