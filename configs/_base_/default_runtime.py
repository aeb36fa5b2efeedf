default_scope = 'detlab'
# DetRunner: atomic checkpoints, checkpoint checks, CPU multi-process set-up, detlab's
# default hooks (detlab/engine/runner/det_runner.py).
runner_type = 'DetRunner'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='DetLoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='DetCheckpointHook', interval=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

# Logs and images go to work_dirs/<config>/<timestamp>/vis_data; view the
# TensorBoard curves with `tensorboard --logdir work_dirs/<config>`.
vis_backends = [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
