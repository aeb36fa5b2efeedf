# Quickstart: FCOS trained from scratch on the built-in shapes data, on a CPU:
#   python tools/train.py configs/quickstart/fcos_r18_fpn_shapes.py
# The RetinaNet quickstart's backbone, neck, data and schedule, with an FCOS head that
# uses the improvements of MMDetection's "center-normbbox-centeronreg-giou" recipe
# (centre sampling, distances in strides, centerness on the box tower, GIoU loss) and
# regress ranges halved for the 12-64 px objects on strides 8-32.
_base_ = './retinanet_r18_fpn_shapes.py'

model = dict(
    type='FCOS',
    bbox_head=dict(
        _delete_=True,
        type='FCOSHead',
        num_classes=3,
        in_channels=64,
        feat_channels=64,
        stacked_convs=2,
        strides=[8, 16, 32],
        regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
        norm_on_bbox=True,
        centerness_on_reg=True,
        center_sampling=True,
        center_sample_radius=1.5,
        norm_cfg=dict(type='GN', num_groups=16, requires_grad=True),
        loss_cls=dict(
            type='FocalLoss',
            use_sigmoid=True,
            gamma=2.0,
            alpha=0.25,
            loss_weight=1.0),
        loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
        loss_centerness=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    train_cfg=None,
    test_cfg=dict(nms=dict(type='nms', iou_threshold=0.6)))

# Fewer iterations than the RetinaNet quickstart: this head costs more per iteration.
max_iters = 600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters, eta_min=2e-5)
]
