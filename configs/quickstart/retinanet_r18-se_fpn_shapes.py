# The RetinaNet quickstart with squeeze-and-excitation in every residual block:
#   python tools/train.py configs/quickstart/retinanet_r18-se_fpn_shapes.py
# An SEBlock (detlab's name; MMDetection has no SE plug-in) rescales the
# channels of each block's second conv output before the residual sum.
_base_ = './retinanet_r18_fpn_shapes.py'

model = dict(
    backbone=dict(plugins=[
        dict(cfg=dict(type='SEBlock', ratio=16), stages=(True, True, True, True),
             position='after_conv2')
    ]))
