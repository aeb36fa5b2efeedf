"""Measure MMDetection 3.3's outputs of HRNet (+ HRFPN), Res2Net, ResNeSt and ResNet with the
ContextBlock and GeneralizedAttention plug-ins, which
tests/test_models/test_backbones/test_mmdet_more_backbones.py pins.

Works as tools/dev/measure_backbones.py (whose ``measure`` and ``measure_config`` it uses):
MMDetection's model gets seeded weights, detlab's loads its state_dict strictly, both run
in eval mode on the same seeded input and must agree elementwise; the printed numbers are
per output its shape, sum and mean of absolute values. ``--configs`` prints the state_dict
signatures of the config fixtures instead, which
tests/test_models/test_backbones/test_mmdet_backbone_configs.py pins; ``--more-configs`` those
of the Cascade and recipe configs, which
tests/test_models/test_detectors/test_mmdet_cascade_and_recipe_configs.py pins.

Not run by CI (it needs the MMDetection wheel):

    PYTHONPATH=$PWD python tools/dev/measure_more_backbones.py [CASE ...]
    PYTHONPATH=$PWD python tools/dev/measure_more_backbones.py --configs [CONFIG ...]
    PYTHONPATH=$PWD python tools/dev/measure_more_backbones.py --more-configs [CONFIG ...]
    PYTHONPATH=$PWD python tools/dev/measure_more_backbones.py --detectors [CONFIG ...]

``--detectors`` runs whole Mask R-CNN detectors of these configs through measure_mask_rcnn.py's
``full_model``: detlab's copy under configs/ (seeded init_weights) and MMDetection's own
file with detlab's state_dict loaded strictly, on coco128 image 9 at 480x360 with 200
proposals; it prints both losses' relative differences and the detections' differences.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure_backbones import measure, measure_config  # noqa: E402
from mmdet_reference import import_mmdet  # noqa: E402


def hrnet_extra(width: int, stage4_modules: int = 3, stage1_block: str = 'BOTTLENECK') -> dict:
    """HRNetV2-W``width``'s ``extra`` (MMDetection's hrnet configs)."""
    return dict(
        stage1=dict(num_modules=1, num_branches=1, block=stage1_block, num_blocks=(4, ),
                    num_channels=(64, )),
        stage2=dict(num_modules=1, num_branches=2, block='BASIC', num_blocks=(4, 4),
                    num_channels=(width, 2 * width)),
        stage3=dict(num_modules=4, num_branches=3, block='BASIC', num_blocks=(4, 4, 4),
                    num_channels=(width, 2 * width, 4 * width)),
        stage4=dict(num_modules=stage4_modules, num_branches=4, block='BASIC',
                    num_blocks=(4, 4, 4, 4),
                    num_channels=(width, 2 * width, 4 * width, 8 * width)))


#: Case name -> backbone config (or a (backbone, neck) tuple), the same in both libraries.
CASES = {
    'hrnetv2_w18': dict(type='HRNet', extra=hrnet_extra(18)),
    'hrnetv2_w32_basic_stage1_single_output': dict(
        type='HRNet', extra=hrnet_extra(32, stage4_modules=2, stage1_block='BASIC'),
        multiscale_output=False),
    'hrnetv2_w18_hrfpn': (dict(type='HRNet', extra=hrnet_extra(18)),
                          dict(type='HRFPN', in_channels=[18, 36, 72, 144], out_channels=64)),
    'hrnetv2_w18_hrfpn_max_stride2': (
        dict(type='HRNet', extra=hrnet_extra(18)),
        dict(type='HRFPN', in_channels=[18, 36, 72, 144], out_channels=32, num_outs=4,
             pooling_type='MAX', stride=2)),
    'res2net50_26w_4s': dict(type='Res2Net', depth=50),
    'res2net50_14w_8s_frozen': dict(type='Res2Net', depth=50, scales=8, base_width=14,
                                    frozen_stages=1, out_indices=(0, 3)),
    'res2net50_48w_2s_caffe_ignored': dict(type='Res2Net', depth=50, scales=2, base_width=48,
                                           style='caffe', deep_stem=False, avg_down=False),
    'resnest50': dict(type='ResNeSt', depth=50, stem_channels=64, radix=2, reduction_factor=4,
                      avg_down_stride=True),
    'resnest50_no_avd_radix1': dict(type='ResNeSt', depth=50, stem_channels=64, radix=1,
                                    avg_down_stride=False, out_indices=(1, 3)),
    'resnest50_groups2_radix4': dict(type='ResNeSt', depth=50, stem_channels=32, groups=2,
                                     base_width=40, radix=4, reduction_factor=2),
    # Plug-ins (mmcv's ContextBlock and GeneralizedAttention), as configs/gcnet and
    # configs/empirical_attention place them.
    'resnet50_gcb_r16_c3_c5': dict(
        type='ResNet', depth=50,
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 16),
                      stages=(False, True, True, True), position='after_conv3')]),
    'resnext50_32x4d_dcn_gcb_r4_c3_c5': dict(
        type='ResNeXt', depth=50, groups=32, base_width=4,
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True),
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 4),
                      stages=(False, True, True, True), position='after_conv3')]),
    'resnet50_gcb_avg_channel_mul_after_conv2': dict(
        type='ResNet', depth=50,
        plugins=[dict(cfg=dict(type='ContextBlock', ratio=1. / 4, pooling_type='avg',
                               fusion_types=('channel_mul', )),
                      stages=(False, False, True, True), position='after_conv2')]),
    'resnet50_attn0010_dcn': dict(
        type='ResNet', depth=50,
        plugins=[dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                               attention_type='0010', kv_stride=2),
                      stages=(False, False, True, True), position='after_conv2')],
        dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
        stage_with_dcn=(False, True, True, True)),
    'resnet50_attn1111': dict(
        type='ResNet', depth=50,
        plugins=[dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                               attention_type='1111', kv_stride=2),
                      stages=(False, False, True, True), position='after_conv2')]),
}
CONFIGS = [
    # Bases of the configs above that configs/ lacked.
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py',
    'fcos/fcos_r50-caffe_fpn_gn-head_4xb4-1x_coco.py',
    # MMSyncBN everywhere; pinned in test_mmdet_more_backbones.py.
    'simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py',
    'empirical_attention/faster-rcnn_r50-attn0010-dcn_fpn_1x_coco.py',
    'empirical_attention/faster-rcnn_r50-attn0010_fpn_1x_coco.py',
    'empirical_attention/faster-rcnn_r50-attn1111-dcn_fpn_1x_coco.py',
    'empirical_attention/faster-rcnn_r50-attn1111_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r101-gcb-r16-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r101-gcb-r4-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r101-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r101-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r101-syncbn_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r50-gcb-r16-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r50-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r50-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_r50-syncbn_fpn_1x_coco.py',
    'gcnet/mask-rcnn_x101-32x4d-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_x101-32x4d-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py',
    'gcnet/mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w18-2x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w32-1x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w32_2x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w40-1x_coco.py',
    'hrnet/faster-rcnn_hrnetv2p-w40_2x_coco.py',
    'hrnet/fcos_hrnetv2p-w18-gn-head_4xb4-1x_coco.py',
    'hrnet/fcos_hrnetv2p-w18-gn-head_4xb4-2x_coco.py',
    'hrnet/fcos_hrnetv2p-w18-gn-head_ms-640-800-4xb4-2x_coco.py',
    'hrnet/fcos_hrnetv2p-w32-gn-head_4xb4-1x_coco.py',
    'hrnet/fcos_hrnetv2p-w32-gn-head_4xb4-2x_coco.py',
    'hrnet/fcos_hrnetv2p-w32-gn-head_ms-640-800-4xb4-2x_coco.py',
    'hrnet/fcos_hrnetv2p-w40-gn-head_ms-640-800-4xb4-2x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w18-1x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w18-2x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w32-1x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w32-2x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w40-2x_coco.py',
    'hrnet/mask-rcnn_hrnetv2p-w40_1x_coco.py',
    'res2net/faster-rcnn_res2net-101_fpn_2x_coco.py',
    'res2net/mask-rcnn_res2net-101_fpn_2x_coco.py',
    'resnest/faster-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
    'resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
    'resnest/mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py',
    'resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py',
]


#: Cascade (Mask) R-CNN on these backbones and MMDetection's norm, scratch, self-supervised,
#: strong-baseline and ResNet-strikes-back recipes and the other recipes of folders detlab
#: had, measured by ``--more-configs``;
#: pinned in tests/test_models/test_detectors/test_mmdet_cascade_and_recipe_configs.py.
MORE_CONFIGS = [
    'dcn/cascade-mask-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/cascade-mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/cascade-mask-rcnn_x101-32x4d-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/cascade-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/cascade-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-r16-gcb-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5-r4-gcb-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-dconv-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-r16-gcb-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn-r4-gcb-c3-c5_fpn_1x_coco.py',
    'gcnet/cascade-mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py',
    'hrnet/cascade-mask-rcnn_hrnetv2p-w18_20e_coco.py',
    'hrnet/cascade-mask-rcnn_hrnetv2p-w32_20e_coco.py',
    'hrnet/cascade-mask-rcnn_hrnetv2p-w40-20e_coco.py',
    'hrnet/cascade-rcnn_hrnetv2p-w18-20e_coco.py',
    'hrnet/cascade-rcnn_hrnetv2p-w32-20e_coco.py',
    'hrnet/cascade-rcnn_hrnetv2p-w40-20e_coco.py',
    'regnet/cascade-mask-rcnn_regnetx-1.6GF_fpn_ms-3x_coco.py',
    'regnet/cascade-mask-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py',
    'regnet/cascade-mask-rcnn_regnetx-400MF_fpn_ms-3x_coco.py',
    'regnet/cascade-mask-rcnn_regnetx-4GF_fpn_ms-3x_coco.py',
    'regnet/cascade-mask-rcnn_regnetx-800MF_fpn_ms-3x_coco.py',
    'res2net/cascade-mask-rcnn_res2net-101_fpn_20e_coco.py',
    'res2net/cascade-rcnn_res2net-101_fpn_20e_coco.py',
    'resnest/cascade-mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py',
    'resnest/cascade-mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py',
    'resnest/cascade-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
    'resnest/cascade-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py',
    'resnet_strikes_back/cascade-mask-rcnn_r50-rsb-pre_fpn_1x_coco.py',
    # Recipes.
    'gn+ws/faster-rcnn_r101_fpn_gn-ws-all_1x_coco.py',
    'gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.py',
    'gn+ws/faster-rcnn_x101-32x4d_fpn_gn-ws-all_1x_coco.py',
    'gn+ws/faster-rcnn_x50-32x4d_fpn_gn-ws-all_1x_coco.py',
    'gn+ws/mask-rcnn_r101_fpn_gn-ws-all_20-23-24e_coco.py',
    'gn+ws/mask-rcnn_r101_fpn_gn-ws-all_2x_coco.py',
    'gn+ws/mask-rcnn_r50_fpn_gn-ws-all_20-23-24e_coco.py',
    'gn+ws/mask-rcnn_r50_fpn_gn-ws-all_2x_coco.py',
    'gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_20-23-24e_coco.py',
    'gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_2x_coco.py',
    'gn+ws/mask-rcnn_x50-32x4d_fpn_gn-ws-all_20-23-24e_coco.py',
    'gn+ws/mask-rcnn_x50-32x4d_fpn_gn-ws-all_2x_coco.py',
    'gn/mask-rcnn_r101_fpn_gn-all_2x_coco.py',
    'gn/mask-rcnn_r101_fpn_gn-all_3x_coco.py',
    'gn/mask-rcnn_r50-contrib_fpn_gn-all_2x_coco.py',
    'gn/mask-rcnn_r50-contrib_fpn_gn-all_3x_coco.py',
    'gn/mask-rcnn_r50_fpn_gn-all_2x_coco.py',
    'gn/mask-rcnn_r50_fpn_gn-all_3x_coco.py',
    'resnet_strikes_back/faster-rcnn_r50-rsb-pre_fpn_1x_coco.py',
    'resnet_strikes_back/mask-rcnn_r50-rsb-pre_fpn_1x_coco.py',
    'resnet_strikes_back/retinanet_r50-rsb-pre_fpn_1x_coco.py',
    'scratch/faster-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
    'scratch/mask-rcnn_r50-scratch_fpn_gn-all_6x_coco.py',
    'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_1x_coco.py',
    'selfsup_pretrain/mask-rcnn_r50-mocov2-pre_fpn_ms-2x_coco.py',
    'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_1x_coco.py',
    'selfsup_pretrain/mask-rcnn_r50-swav-pre_fpn_ms-2x_coco.py',
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py',
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-100e_coco.py',
    'strong_baselines/mask-rcnn_r50-caffe_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-400e_coco.py',
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_amp-lsj-100e_coco.py',
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-100e_coco.py',
    'strong_baselines/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_lsj-50e_coco.py',
    # Other recipes of folders detlab had.
    'atss/atss_r101_fpn_1x_coco.py',
    'atss/atss_r101_fpn_8xb8-amp-lsj-200e_coco.py',
    'atss/atss_r18_fpn_8xb8-amp-lsj-200e_coco.py',
    'atss/atss_r50_fpn_8xb8-amp-lsj-200e_coco.py',
    'dcn/mask-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/mask-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/mask-rcnn_r50-dconv-c3-c5_fpn_amp-1x_coco.py',
    'dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py',
    'dcnv2/mask-rcnn_r50-mdconv-c3-c5_fpn_amp-1x_coco.py',
    'dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py',
    'dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py',
    'faster_rcnn/faster-rcnn_r101-caffe_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r101-caffe_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    'faster_rcnn/faster-rcnn_r101_fpn_8xb8-amp-lsj-200e_coco.py',
    'faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r18_fpn_8xb8-amp-lsj-200e_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe-c4_ms-1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_ms-1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe-dc5_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_c4-1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_90k_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco-person-bicycle-car.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco-person.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-1x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-2x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r50-caffe_fpn_ms-90k_coco.py',
    'faster_rcnn/faster-rcnn_r50-tnr-pre_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_8xb8-amp-lsj-200e_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_amp-1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_ciou_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_fcos-rpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_giou_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_iou_1x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r50_fpn_soft-nms_1x_coco.py',
    'fcos/fcos_r101-caffe_fpn_gn-head-1x_coco.py',
    'fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    'fcos/fcos_r101_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py',
    'fcos/fcos_r18_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py',
    'fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
    'fcos/fcos_r50-caffe_fpn_gn-head-center_1x_coco.py',
    'fcos/fcos_r50-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    'fcos/fcos_r50-dcn-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
    'fcos/fcos_r50_fpn_gn-head-center-normbbox-centeronreg-giou_8xb8-amp-lsj-200e_coco.py',
    'fpg/faster-rcnn_r50_fpn_crop640-50e_coco.py',
    'fpg/mask-rcnn_r50_fpn_crop640-50e_coco.py',
    'mask_rcnn/mask-rcnn_r50_fpn_1x-wandb_coco.py',
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_2x_coco.py',
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_ms-poly-3x_coco.py',
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_1x_coco.py',
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_ms-poly-1x_coco.py',
    'mask_rcnn/mask-rcnn_x101-32x8d_fpn_ms-poly-3x_coco.py',
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_1x_coco.py',
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_2x_coco.py',
    'mask_rcnn/mask-rcnn_x101-64x4d_fpn_ms-poly_3x_coco.py',
    'pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py',
    'pascal_voc/faster-rcnn_r50_fpn_1x_voc0712-cocofmt.py',
    'regnet/mask-rcnn_regnetx-1.6GF_fpn_ms-poly-3x_coco.py',
    'regnet/mask-rcnn_regnetx-12GF_fpn_1x_coco.py',
    'regnet/mask-rcnn_regnetx-3.2GF-mdconv-c3-c5_fpn_1x_coco.py',
    'regnet/mask-rcnn_regnetx-3.2GF_fpn_1x_coco.py',
    'regnet/mask-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py',
    'regnet/mask-rcnn_regnetx-400MF_fpn_ms-poly-3x_coco.py',
    'regnet/mask-rcnn_regnetx-4GF_fpn_1x_coco.py',
    'regnet/mask-rcnn_regnetx-4GF_fpn_ms-poly-3x_coco.py',
    'regnet/mask-rcnn_regnetx-6.4GF_fpn_1x_coco.py',
    'regnet/mask-rcnn_regnetx-800MF_fpn_ms-poly-3x_coco.py',
    'regnet/mask-rcnn_regnetx-8GF_fpn_1x_coco.py',
    'retinanet/retinanet_r101-caffe_fpn_1x_coco.py',
    'retinanet/retinanet_r101-caffe_fpn_ms-3x_coco.py',
    'retinanet/retinanet_r101_fpn_1x_coco.py',
    'retinanet/retinanet_r101_fpn_2x_coco.py',
    'retinanet/retinanet_r101_fpn_8xb8-amp-lsj-200e_coco.py',
    'retinanet/retinanet_r101_fpn_ms-640-800-3x_coco.py',
    'retinanet/retinanet_r18_fpn_1x_coco.py',
    'retinanet/retinanet_r18_fpn_1xb8-1x_coco.py',
    'retinanet/retinanet_r18_fpn_8xb8-amp-lsj-200e_coco.py',
    'retinanet/retinanet_r50-caffe_fpn_1x_coco.py',
    'retinanet/retinanet_r50-caffe_fpn_ms-1x_coco.py',
    'retinanet/retinanet_r50-caffe_fpn_ms-2x_coco.py',
    'retinanet/retinanet_r50-caffe_fpn_ms-3x_coco.py',
    'retinanet/retinanet_r50_fpn_8xb8-amp-lsj-200e_coco.py',
    'retinanet/retinanet_r50_fpn_90k_coco.py',
    'retinanet/retinanet_r50_fpn_amp-1x_coco.py',
    'retinanet/retinanet_r50_fpn_ms-640-800-3x_coco.py',
    'rpn/rpn_r101-caffe_fpn_1x_coco.py',
    'rpn/rpn_r101_fpn_1x_coco.py',
    'rpn/rpn_r101_fpn_2x_coco.py',
    'rpn/rpn_r50-caffe-c4_1x_coco.py',
    'rpn/rpn_r50-caffe_fpn_1x_coco.py',
    'rpn/rpn_r50_fpn_2x_coco.py',
    'rpn/rpn_x101-32x4d_fpn_2x_coco.py',
    'rpn/rpn_x101-64x4d_fpn_2x_coco.py',
    'simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py',
    'simple_copy_paste/mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-90k_coco.py',
    'foveabox/fovea_r101_fpn_4xb4-1x_coco.py',
    'foveabox/fovea_r101_fpn_4xb4-2x_coco.py',
    'foveabox/fovea_r101_fpn_gn-head-align_4xb4-2x_coco.py',
    'foveabox/fovea_r101_fpn_gn-head-align_ms-640-800-4xb4-2x_coco.py',
    'foveabox/fovea_r50_fpn_4xb4-1x_coco.py',
    'foveabox/fovea_r50_fpn_4xb4-2x_coco.py',
    'foveabox/fovea_r50_fpn_gn-head-align_4xb4-2x_coco.py',
    'foveabox/fovea_r50_fpn_gn-head-align_ms-640-800-4xb4-2x_coco.py',
]


#: Whole detectors compared by ``--detectors`` (folder/file under configs/).
DETECTORS = [
    'hrnet/mask-rcnn_hrnetv2p-w18-1x_coco.py',
    'res2net/mask-rcnn_res2net-101_fpn_2x_coco.py',
    'resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py',
    'gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py',
]


def measure_detectors(paths) -> None:
    import json

    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from measure_mask_rcnn import full_model, quiet
    register_all_modules(init_default_scope=False)
    quiet()
    for path in paths:
        folder, name = path.split('/')
        options = {f'model.{key}.max_per_img': 200
                   for key in ('train_cfg.rpn_proposal', 'test_cfg.rpn')}
        if folder == 'resnest':
            # One image cannot train the BatchNorm of the attention's (1, C, 1, 1) map.
            options['model.backbone.norm_eval'] = True
        for report in full_model(MMDET_MODELS, name, (480, 360), options, folder=folder):
            print(json.dumps(report))


def main() -> None:
    import_mmdet()
    args = sys.argv[1:]
    if args[:1] == ['--detectors']:
        return measure_detectors(args[1:] or DETECTORS)
    if args[:1] in (['--configs'], ['--more-configs']):
        # mmcv's SyncBatchNorm (MMSyncBN) needs a process group to be built: one of one.
        os.environ.setdefault('MASTER_ADDR', '127.0.0.1')
        os.environ.setdefault('MASTER_PORT', '29581')
        torch.distributed.init_process_group('gloo', rank=0, world_size=1)
        for path in args[1:] or (CONFIGS if args[0] == '--configs' else MORE_CONFIGS):
            measure_config(path)
        return
    for name in args or list(CASES):
        measure(name, CASES[name])


if __name__ == '__main__':
    main()
