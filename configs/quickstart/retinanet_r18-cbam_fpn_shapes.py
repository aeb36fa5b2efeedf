# The RetinaNet quickstart with CBAM (channel, then spatial attention) in every
# residual block:
#   python tools/train.py configs/quickstart/retinanet_r18-cbam_fpn_shapes.py
# CBAM is detlab's name for the plug-in (MMDetection has none); it re-weights
# each block's second conv output before the residual sum.
_base_ = './retinanet_r18_fpn_shapes.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='CBAM', ratio=16, spatial_kernel=7), stages=(True, True, True, True),
             position='after_conv2')
    ]))
