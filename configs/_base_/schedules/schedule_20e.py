# The "20e" schedule: 20 epochs, lr steps at epochs 16 and 19, 500-iteration warm-up.
_base_ = './schedule_1x.py'
train_cfg = dict(max_epochs=20)

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=20, by_epoch=True, milestones=[16, 19], gamma=0.1)
]
