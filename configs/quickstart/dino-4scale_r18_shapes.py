# Quickstart: a small DINO trained from scratch on the built-in shapes data, on a CPU:
#   python tools/train.py configs/quickstart/dino-4scale_r18_shapes.py
# Compared with dino/dino-4scale_r50_8xb2-12e_coco.py it uses a half-width ResNet-18 (no
# ImageNet weights: detlab downloads nothing) on strides 8, 16 and 32 only (three levels: the
# shapes are 12 px and up, and the encoder's deformable attention over every pixel of every
# level is the largest part of a step), a 128-channel transformer with 4 heads, 2 encoder and
# 3 decoder layers and 256-wide feedforwards, 50 queries (an image holds at most 8 shapes),
# 30 denoising queries, 192 px images and 1000 iterations of batch 8. AdamW and gradient
# clipping stay, at lr 1e-3 for the whole network with a 200-iteration warm-up and cosine
# decay: the COCO recipe's backbone lr x 0.1 suits ImageNet weights, not a backbone that
# learns from scratch.
_base_ = ['../_base_/datasets/shapes_detection.py', '../_base_/default_runtime.py']

max_iters = 1000
embed_dims = 128
num_levels = 3
model = dict(
    type='DINO',
    num_queries=50,
    num_feature_levels=num_levels,
    with_box_refine=True,
    as_two_stage=True,
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=32,
        num_stages=4,
        out_indices=(1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=None),
    neck=dict(
        type='ChannelMapper',
        in_channels=[64, 128, 256],
        kernel_size=1,
        out_channels=embed_dims,
        act_cfg=None,
        norm_cfg=dict(type='GN', num_groups=32),
        num_outs=num_levels),
    encoder=dict(
        num_layers=2,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, num_levels=num_levels,
                               dropout=0.0),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256, ffn_drop=0.0))),
    decoder=dict(
        num_layers=3,
        return_intermediate=True,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, dropout=0.0),
            cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=4, num_levels=num_levels,
                                dropout=0.0),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256, ffn_drop=0.0)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=embed_dims // 2, normalize=True, offset=0.0,
                             temperature=20),
    bbox_head=dict(
        type='DINOHead',
        num_classes=3,
        embed_dims=embed_dims,
        sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    dn_cfg=dict(
        label_noise_scale=0.5,
        box_noise_scale=1.0,
        group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=30)),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='FocalLossCost', weight=2.0),
                dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
                dict(type='IoUCost', iou_mode='giou', weight=2.0)
            ])),
    test_cfg=dict(max_per_img=50))

# Iteration-based: one endless shuffled stream (no end-of-epoch restarts).
train_dataloader = dict(sampler=dict(type='InfiniteSampler', shuffle=True))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.001, weight_decay=0.0001),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters, eta_min=1e-5)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=True, interval=5))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
randomness = dict(seed=0)
