# Quickstart: YOLOX-tiny trained from scratch on the built-in shapes data, on a CPU:
#   python tools/train.py configs/quickstart/yolox_tiny_shapes.py
# YOLOX's recipe at 160 px: Mosaic, RandomAffine and HSV jitter (MultiImageMixDataset), batches
# resized to a random multiple of 32 every 10 iterations (BatchSyncRandomResize), SimOTA, then
# the last epochs without Mosaic and RandomAffine and with the L1 box loss
# (YOLOXModeSwitchHook); SGD with a quadratic warm-up, cosine decay, and an EMA of the weights
# that is validated and saved. No ImageNet weights (detlab downloads nothing).
_base_ = '../yolox/yolox_tiny_8xb8-300e_coco.py'

dataset_type = 'ShapesDataset'
data_root = 'data/shapes/'
img_scale = (160, 160)
max_epochs = 8
num_last_epochs = 2
base_lr = 0.01

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchSyncRandomResize', random_size_range=(128, 192), size_divisor=32,
             interval=10)
    ]),
    bbox_head=dict(num_classes=3),
    test_cfg=dict(score_thr=0.01, nms=dict(type='nms', iou_threshold=0.65), max_per_img=100))

train_pipeline = [
    dict(type='Mosaic', img_scale=img_scale, pad_val=114.0),
    dict(type='RandomAffine', scaling_ratio_range=(0.5, 1.5),
         border=(-img_scale[0] // 2, -img_scale[1] // 2)),
    dict(type='YOLOXHSVRandomAug'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(
        _delete_=True,
        type='MultiImageMixDataset',
        dataset=dict(
            type=dataset_type,
            data_root=data_root,
            split='train',
            filter_cfg=dict(filter_empty_gt=True, min_size=0),
            pipeline=[
                dict(type='LoadImageFromFile', backend_args=None),
                dict(type='LoadAnnotations', with_bbox=True)
            ]),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=False,
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='val',
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    _delete_=True,
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val.json',
    metric='bbox',
    classwise=True)
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(optimizer=dict(lr=base_lr))
param_scheduler = [
    dict(type='QuadraticWarmupLR', by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=base_lr * 0.05, begin=1,
         T_max=max_epochs - num_last_epochs - 1, end=max_epochs - num_last_epochs,
         by_epoch=True, convert_to_iter_based=True),
    dict(type='ConstantLR', by_epoch=True, factor=1, begin=max_epochs - num_last_epochs,
         end=max_epochs)
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook', draw=True, interval=5))
custom_hooks = [
    dict(type='YOLOXModeSwitchHook', num_last_epochs=num_last_epochs, priority=48),
    dict(type='SyncNormHook', priority=48),
    dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002, update_buffers=True,
         priority=49)
]
randomness = dict(seed=0)
