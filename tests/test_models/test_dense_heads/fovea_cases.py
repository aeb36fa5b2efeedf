"""Small FoveaHead cases shared by test_fovea_head.py and tools/dev/measure_fovea.py.

Three levels of a 64x80 input; the boxes of image 0 fall into one or two levels'
scale ranges each (sqrt(area) 29.7, 44.7, 13.0), image 1 has one box on the top
level only and another on the first.
"""
import torch
from mmengine.structures import InstanceData

from dense_head_cases import FEAT_SIZES, STRIDES, TEST_CFG

FOVEA_CFG = dict(type='FoveaHead', num_classes=4, in_channels=8, feat_channels=8,
                 stacked_convs=2, strides=STRIDES, base_edge_list=[16, 32, 64],
                 scale_ranges=((1, 32), (16, 64), (32, 128)), sigma=0.4, with_deform=False,
                 loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=1.50, alpha=0.4,
                               loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=0.11, loss_weight=1.0),
                 test_cfg=TEST_CFG)
#: The gn-head-align variant: FeatureAlign and the wide class convs under GN.
FOVEA_ALIGN_CFG = dict(FOVEA_CFG, with_deform=True,
                       norm_cfg=dict(type='GN', num_groups=4, requires_grad=True))
CASES = {'plain': FOVEA_CFG, 'align': FOVEA_ALIGN_CFG}

FOVEA_GTS = [
    InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 70., 50.],
                                      [50., 30., 62., 44.]]),
                 labels=torch.tensor([0, 3, 1])),
    InstanceData(bboxes=torch.tensor([[0., 0., 72., 56.], [30., 20., 41., 33.]]),
                 labels=torch.tensor([2, 2]))]
FOVEA_METAS = [dict(img_shape=(64, 80), pad_shape=(64, 80), scale_factor=(2.0, 2.0)),
               dict(img_shape=(56, 72), pad_shape=(64, 80), scale_factor=(1.0, 1.0))]


def fovea_feats() -> list:
    """(2, 8, h, w) seeded features per level."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(2, 8, h, w, generator=generator) for h, w in FEAT_SIZES]
