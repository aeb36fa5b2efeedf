"""Measure MMDetection 3.3's backbone outputs that detlab's backbone tests pin.

For each case, builds MMDetection's backbone, fills its weights with
``tests/helpers.py:fill_seeded_weights`` (seeded, sorted-key order), copies its
state_dict into detlab's backbone of the same config strictly, runs both in
eval mode on the same seeded (1, 3, 64, 64) input, checks that they agree and
prints the numbers the tests pin: per output, its shape, sum and mean of
absolute values.

With ``--configs``, builds MMDetection's detector from each config fixture
under tests/data/mmdet_3.3_configs (backbone init_cfg dropped) and prints its
number of state_dict entries and the SHA-1 of its sorted (key, shape) list,
which tests/test_models/test_backbones/test_mmdet_backbone_configs.py pins.

Not run by CI (it needs the MMDetection wheel):

    PYTHONPATH=$PWD python tools/dev/measure_backbones.py [CASE ...]
    PYTHONPATH=$PWD python tools/dev/measure_backbones.py --configs [CONFIG ...]
    PYTHONPATH=$PWD python tools/dev/measure_backbones.py --anchors
    PYTHONPATH=$PWD python tools/dev/measure_backbones.py --converted

``--converted`` writes original-format Swin/PVT checkpoints (tests/helpers.py), loads
them into MMDetection's and detlab's backbones with ``convert_weights=True``, checks
that both get the same weights and outputs, and prints the outputs the tests pin.
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests'))
from helpers import fill_seeded_weights, grid_assigner_case, state_dict_signature  # noqa: E402,E501
from mmdet_reference import import_mmdet  # noqa: E402

#: Case name -> backbone config, the same in MMDetection and detlab.
CASES = {
    'resnext50_32x4d': dict(type='ResNeXt', depth=50, groups=32, base_width=4),
    'resnext101_64x4d_caffe': dict(type='ResNeXt', depth=101, groups=64, base_width=4,
                                   style='caffe', out_indices=(1, 3)),
    'regnetx_400mf': dict(type='RegNet', arch='regnetx_400mf'),
    'regnetx_3.2gf': dict(type='RegNet', arch='regnetx_3.2gf', out_indices=(0, 2)),
    'regnetx_12gf': dict(type='RegNet', arch='regnetx_12gf', frozen_stages=1),
    'regnet_dict_arch_bot_mul': dict(type='RegNet', arch=dict(w0=24, wa=36.44, wm=2.49,
                                                              group_w=8, depth=13, bot_mul=0.5)),
    'regnet_dict_arch_3_stages': dict(type='RegNet', arch=dict(w0=48, wa=20.0, wm=2.3,
                                                               group_w=24, depth=12, bot_mul=1.0),
                                      strides=(2, 2, 2), dilations=(1, 1, 1),
                                      out_indices=(0, 1, 2)),
    'resnet50_dcn_c3_c5': dict(type='ResNet', depth=50,
                               dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
                               stage_with_dcn=(False, True, True, True)),
    'resnet50_dcnv2_group4_c3_c5': dict(type='ResNet', depth=50,
                                        dcn=dict(type='DCNv2', deform_groups=4,
                                                 fallback_on_stride=False),
                                        stage_with_dcn=(False, True, True, True)),
    'resnext50_32x4d_dcn_c5': dict(type='ResNeXt', depth=50, groups=32, base_width=4,
                                   dcn=dict(type='DCN', deform_groups=1,
                                            fallback_on_stride=False),
                                   stage_with_dcn=(False, False, False, True)),
    'regnetx_400mf_dcnv2_c3_c5': dict(type='RegNet', arch='regnetx_400mf',
                                      dcn=dict(type='DCNv2', deform_groups=1,
                                               fallback_on_stride=False),
                                      stage_with_dcn=(False, True, True, True)),
    'mobilenetv2': dict(type='MobileNetV2'),
    'mobilenetv2_w0.75_all_outputs': dict(type='MobileNetV2', widen_factor=0.75,
                                          out_indices=tuple(range(8))),
    'mobilenetv2_w1.5': dict(type='MobileNetV2', widen_factor=1.5, out_indices=(2, 7)),
    'darknet53': dict(type='Darknet', depth=53),
    'darknet53_all_outputs': dict(type='Darknet', depth=53, out_indices=(0, 1, 2, 3, 4, 5)),
    'ssdvgg16': dict(type='SSDVGG', depth=16),
    'ssdvgg11_one_output': dict(type='SSDVGG', depth=11, out_feature_indices=(24, )),
    # Swin: 16x16, 8x8, 4x4 and 2x2 token maps on 4x4 windows (padding on the last), and a
    # variant with 3x3 windows (padding on every stage), no patch norm nor qkv bias.
    'swin_tiny32': dict(type='SwinTransformer', embed_dims=32, depths=(2, 2, 2, 2),
                        num_heads=(1, 2, 4, 8), window_size=4),
    'swin_w3_no_patch_norm': dict(type='SwinTransformer', embed_dims=16, depths=(2, 2, 1, 1),
                                  num_heads=(2, 2, 2, 2), window_size=3, qkv_bias=False,
                                  patch_norm=False, out_indices=(1, 3), mlp_ratio=2),
    'swin_abs_pos_embed': dict(type='SwinTransformer', embed_dims=16, depths=(1, 1, 2, 1),
                               num_heads=(1, 1, 2, 2), window_size=4, pretrain_img_size=64,
                               use_abs_pos_embed=True, out_indices=(0, 2)),
    'swin_t': dict(type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2],
                   num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4, drop_path_rate=0.2),
    'pvt_tiny16': dict(type='PyramidVisionTransformer', embed_dims=16, num_layers=[1, 1, 1, 2]),
    'pvt_t': dict(type='PyramidVisionTransformer', num_layers=[2, 2, 2, 2]),
    'pvtv2_tiny16': dict(type='PyramidVisionTransformerV2', embed_dims=16,
                         num_layers=[1, 1, 1, 2], out_indices=(1, 2, 3)),
    'pvtv2_b0': dict(type='PyramidVisionTransformerV2', embed_dims=32, num_layers=[2, 2, 2, 2]),
}
#: Backbone and neck pairs (``_base_/models/ssd300.py``'s), measured on larger images.
NECK_CASES = {
    'ssd300_vgg16_neck': (
        dict(type='SSDVGG', depth=16, with_last_pool=False, ceil_mode=True,
             out_indices=(3, 4), out_feature_indices=(22, 34)),
        dict(type='SSDNeck', in_channels=(512, 1024), out_channels=(512, 1024, 512, 256, 256, 256),
             level_strides=(2, 2, 1, 1), level_paddings=(1, 1, 0, 0), l2_norm_scale=20),
        300),
    'yolov3_darknet53_neck': (
        dict(type='Darknet', depth=53, out_indices=(3, 4, 5)),
        dict(type='YOLOV3Neck', num_scales=3, in_channels=[1024, 512, 256],
             out_channels=[512, 256, 128]),
        96),
}
SEED = 0
IMAGE_SIZE = 64


def seeded_input(size: int = IMAGE_SIZE) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))


def summarize(outputs) -> list:
    return [(tuple(o.shape), round(o.sum().item(), 3), round(o.abs().mean().item(), 6))
            for o in outputs]


def build_pair(cfgs, registry) -> torch.nn.Module:
    """The backbone (and neck) of ``cfgs`` as one module, in eval mode."""
    modules = [registry.build(dict(cfg)) for cfg in cfgs]
    model = torch.nn.Sequential(*modules)
    model.eval()  # not chained: mmdet's ResNet.train returns None
    return model


def measure(name: str, cfg, image_size: int = IMAGE_SIZE) -> None:
    from mmdet.registry import MODELS as MMDET_MODELS

    from detlab.registry import MODELS
    cfgs = cfg if isinstance(cfg, tuple) else (cfg, )
    reference = build_pair(cfgs, MMDET_MODELS)
    fill_seeded_weights(reference, SEED)
    model = build_pair(cfgs, MODELS)
    model.load_state_dict(reference.state_dict(), strict=True)
    x = seeded_input(image_size)
    with torch.no_grad():
        want, got = reference(x), model(x)
    if isinstance(want, torch.Tensor):
        want, got = (want, ), (got, )
    for w, g in zip(want, got):
        assert torch.allclose(w, g, rtol=1e-5, atol=1e-5), (name, (w - g).abs().max())
    print(f'{name!r}: {summarize(want)},')


def measure_config(path: str) -> None:
    from mmengine.config import Config
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(os.path.join(FIXTURES, path))
    cfg.model.backbone.init_cfg = None
    print(f'{path!r}: {state_dict_signature(MMDET_MODELS.build(cfg.model))},')


FIXTURES = os.path.join(HERE, '..', '..', 'tests', 'data', 'mmdet_3.3_configs')
CONFIGS = [
    'retinanet/retinanet_x101-32x4d_fpn_1x_coco.py',
    'retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py',
    'regnet/retinanet_regnetx-3.2GF_fpn_1x_coco.py',
    'regnet/retinanet_regnetx-1.6GF_fpn_1x_coco.py',
    'regnet/retinanet_regnetx-800MF_fpn_1x_coco.py',
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py',
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_2x_coco.py',
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py',
    'regnet/faster-rcnn_regnetx-400MF_fpn_ms-3x_coco.py',
    'regnet/faster-rcnn_regnetx-800MF_fpn_ms-3x_coco.py',
    'regnet/faster-rcnn_regnetx-1.6GF_fpn_ms-3x_coco.py',
    'regnet/faster-rcnn_regnetx-4GF_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    'dcn/faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/faster-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py',
    'dcn/faster-rcnn_x101-32x4d-dconv-c3-c5_fpn_1x_coco.py',
    'dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py',
    'dcnv2/faster-rcnn_r50-mdconv-group4-c3-c5_fpn_1x_coco.py',
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_2x_coco.py',
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_x101-32x8d_fpn_ms-3x_coco.py',
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_2x_coco.py',
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.py',
    'retinanet/retinanet_x101-32x4d_fpn_2x_coco.py',
    'retinanet/retinanet_x101-64x4d_fpn_2x_coco.py',
    'retinanet/retinanet_x101-64x4d_fpn_ms-640-800-3x_coco.py',
    'rpn/rpn_x101-32x4d_fpn_1x_coco.py',
    'rpn/rpn_x101-64x4d_fpn_1x_coco.py',
    'fcos/fcos_x101-64x4d_fpn_gn-head_ms-640-800-2x_coco.py',
    'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py',
    'swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py',
    'swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py',
    'swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py',
    'swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py',
    'dino/dino-5scale_swin-l_8xb2-12e_coco.py',
    'dino/dino-5scale_swin-l_8xb2-36e_coco.py',
    'rtmdet/rtmdet_l_swin_b_4xb32-100e_coco.py',
    'rtmdet/rtmdet_l_swin_b_p6_4xb16-100e_coco.py',
    'pvt/retinanet_pvt-t_fpn_1x_coco.py',
    'pvt/retinanet_pvt-s_fpn_1x_coco.py',
    'pvt/retinanet_pvt-m_fpn_1x_coco.py',
    'pvt/retinanet_pvt-l_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b0_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b1_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b2_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b3_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b4_fpn_1x_coco.py',
    'pvt/retinanet_pvtv2-b5_fpn_1x_coco.py',
]


#: SSD anchor generators of MMDetection's configs (ssd300 COCO and VOC, ssd512, SSDLite) and
#: one scale-major variant; tests/test_models/test_task_modules/test_ssd_anchor_generator.py.
ANCHOR_CASES = [
    dict(type='SSDAnchorGenerator', scale_major=False, input_size=300,
         basesize_ratio_range=(0.15, 0.9), strides=[8, 16, 32, 64, 100, 300],
         ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]),
    dict(type='SSDAnchorGenerator', scale_major=False, input_size=300,
         basesize_ratio_range=(0.2, 0.9), strides=[8, 16, 32, 64, 100, 300],
         ratios=[[2], [2, 3], [2, 3], [2, 3], [2], [2]]),
    dict(type='SSDAnchorGenerator', scale_major=False, input_size=512,
         basesize_ratio_range=(0.1, 0.9), strides=[8, 16, 32, 64, 128, 256, 512],
         ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]),
    dict(type='SSDAnchorGenerator', scale_major=False, strides=[16, 32, 64, 107, 160, 320],
         ratios=[[2, 3]] * 6, min_sizes=[48, 100, 150, 202, 253, 304],
         max_sizes=[100, 150, 202, 253, 304, 320]),
    dict(type='SSDAnchorGenerator', scale_major=True, input_size=512,
         basesize_ratio_range=(0.15, 0.9), strides=[8, 16, 32, 64, 128, 256, 512],
         ratios=[[2], [2, 3], [2, 3], [2, 3], [2, 3], [2], [2]]),
]


def measure_anchors() -> None:
    """Check detlab's SSD anchors (base and on a 3x4 grid) equal MMDetection's exactly and
    print base sizes and per-level sums of |coordinates|."""
    from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS

    from detlab.registry import TASK_UTILS
    for cfg in ANCHOR_CASES:
        reference, ours = MMDET_TASK_UTILS.build(dict(cfg)), TASK_UTILS.build(dict(cfg))
        sizes = [(3, 4)] * reference.num_levels
        pairs = list(zip(reference.base_anchors, ours.base_anchors)) + list(
            zip(reference.grid_priors(sizes, device='cpu'), ours.grid_priors(sizes, device='cpu')))
        assert all(torch.equal(a, b) for a, b in pairs)
        print(reference.base_sizes, [tuple(a.shape) for a in reference.base_anchors],
              [round(a.abs().sum().item(), 4) for a in reference.base_anchors])


YOLO_ANCHORS = dict(type='YOLOAnchorGenerator', strides=[32, 16, 8],
                    base_sizes=[[(116, 90), (156, 198), (373, 326)],
                                [(30, 61), (62, 45), (59, 119)],
                                [(10, 13), (16, 30), (33, 23)]])


def measure_yolo() -> None:
    """Check YOLOv3's anchors (yolov3_d53's) and YOLOBBoxCoder on seeded boxes equal
    MMDetection's and print the numbers tests/test_models/test_task_modules/test_yolo.py pins."""
    from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS

    from detlab.registry import TASK_UTILS
    reference, ours = MMDET_TASK_UTILS.build(dict(YOLO_ANCHORS)), TASK_UTILS.build(
        dict(YOLO_ANCHORS))
    sizes = [(2, 3), (4, 6), (8, 12)]
    want = reference.grid_priors(sizes, device='cpu')
    got = ours.grid_priors(sizes, device='cpu')
    assert all(torch.equal(a, b) for a, b in zip(want, got))
    print('anchors', [round(a.abs().sum().item(), 4) for a in want])
    generator = torch.Generator().manual_seed(SEED)
    anchors = want[2][:20]
    xy = torch.rand(20, 2, generator=generator) * 80
    gt = torch.cat([xy, xy + 5 + torch.rand(20, 2, generator=generator) * 40], dim=1)
    stride = torch.full((20, ), 8.)
    coder_ref = MMDET_TASK_UTILS.build(dict(type='YOLOBBoxCoder'))
    coder = TASK_UTILS.build(dict(type='YOLOBBoxCoder'))
    targets = coder_ref.encode(anchors, gt, stride)
    assert torch.equal(targets, coder.encode(anchors, gt, stride))
    preds = torch.rand(20, 4, generator=generator)
    decoded = coder_ref.decode(anchors, preds, stride[:, None])
    assert torch.equal(decoded, coder.decode(anchors, preds, stride[:, None]))
    print('encode', round(targets.sum().item(), 4), round(targets.abs().max().item(), 4))
    print('decode', round(decoded.sum().item(), 4), round(decoded.abs().max().item(), 4))


GRID_ASSIGNER_CASES = [
    dict(type='GridAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0),
    dict(type='GridAssigner', pos_iou_thr=0.3, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.05,
         gt_max_assign_all=False),
]


def measure_grid_assigner() -> None:
    """GridAssigner's assignment equals MMDetection's on the seeded case; prints counts."""
    from mmdet.registry import TASK_UTILS as MMDET_TASK_UTILS

    from detlab.registry import TASK_UTILS
    for cfg in GRID_ASSIGNER_CASES:
        preds, gts = grid_assigner_case()
        want = MMDET_TASK_UTILS.build(dict(cfg)).assign(preds, gts)
        got = TASK_UTILS.build(dict(cfg)).assign(preds, gts)
        assert torch.equal(want.gt_inds, got.gt_inds) and torch.equal(want.labels, got.labels)
        assert torch.equal(want.max_overlaps, got.max_overlaps)
        positive = torch.nonzero(want.gt_inds > 0).squeeze(1)
        print([int((want.gt_inds == v).sum()) for v in (-1, 0)], positive.tolist(),
              want.gt_inds[positive].tolist(), want.labels[positive].tolist(),
              round(want.max_overlaps.sum().item(), 4))


#: Backbones initialised from an original-format checkpoint (convert_weights=True) that
#: tests/helpers.py writes from the weights of ``source`` filled with seed 1; ``target`` is
#: the model that loads it: with another window size the bias tables are resized (and the
#: checkpoint holds no relative_position_index buffers, whose shapes would not fit:
#: MMDetection's loader raises on them).
CONVERTED_CASES = {
    'swin_converted': dict(source=CASES['swin_tiny32']),
    'swin_converted_window_3': dict(source=CASES['swin_tiny32'], without_buffers=True,
                                    target=dict(CASES['swin_tiny32'], window_size=3)),
    'pvt_converted': dict(source=CASES['pvt_tiny16']),
    'pvtv2_converted': dict(source=CASES['pvtv2_tiny16']),
}
CONVERTED_SEED = 1


def write_original_checkpoint(source_cfg: dict, registry, path: str,
                              without_buffers: bool = False) -> None:
    """Write the original repository's checkpoint for ``source_cfg`` filled with
    :data:`CONVERTED_SEED`, as tests/helpers.py's writers lay it out."""
    from helpers import original_pvt_checkpoint, original_swin_checkpoint
    source = registry.build(dict(source_cfg))
    fill_seeded_weights(source, CONVERTED_SEED)
    weights = source.state_dict()
    if without_buffers:
        weights = {k: v for k, v in weights.items() if 'relative_position_index' not in k}
    write = (original_swin_checkpoint if source_cfg['type'] == 'SwinTransformer' else
             original_pvt_checkpoint)
    torch.save(write(weights), path)


def measure_converted() -> None:
    """MMDetection's and detlab's backbones load the same original-format checkpoint
    (convert_weights=True) into the same weights and outputs; prints the outputs."""
    import tempfile

    from mmengine.config import ConfigDict
    from mmdet.registry import MODELS as MMDET_MODELS

    from detlab.registry import MODELS
    with tempfile.TemporaryDirectory() as tmp:
        for name, case in CONVERTED_CASES.items():
            path = os.path.join(tmp, f'{name}.pth')
            write_original_checkpoint(case['source'], MMDET_MODELS, path,
                                      case.get('without_buffers', False))
            # A ConfigDict, as from a config file: MMDetection reads init_cfg.checkpoint.
            target = dict(case.get('target', case['source']), convert_weights=True,
                          init_cfg=ConfigDict(type='Pretrained', checkpoint=path))
            models = [registry.build(dict(target)) for registry in (MMDET_MODELS, MODELS)]
            for model in models:
                model.init_weights()
                model.eval()
            want, got = (m.state_dict() for m in models)
            assert want.keys() == got.keys()
            assert all(torch.equal(want[k], got[k]) for k in want), name
            with torch.no_grad():
                outputs = [m(seeded_input()) for m in models]
            assert all(torch.allclose(w, g, rtol=1e-5, atol=1e-5) for w, g in zip(*outputs))
            print(f'{name!r}: {summarize(outputs[0])},')


def main() -> None:
    import_mmdet()
    args = sys.argv[1:]
    if args[:1] == ['--anchors']:
        measure_anchors()
        measure_grid_assigner()
        return measure_yolo()
    if args[:1] == ['--converted']:
        return measure_converted()
    if args[:1] == ['--configs']:
        for path in args[1:] or CONFIGS:
            measure_config(path)
        return
    for name in args or list(CASES) + list(NECK_CASES):
        if name in NECK_CASES:
            *cfgs, image_size = NECK_CASES[name]
            measure(name, tuple(cfgs), image_size)
        else:
            measure(name, CASES[name])


if __name__ == '__main__':
    main()
