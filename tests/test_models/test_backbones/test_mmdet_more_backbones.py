"""HRNet with HRFPN, Res2Net, ResNeSt and ResNet with the ContextBlock and GeneralizedAttention
plug-ins compute MMDetection 3.3's outputs for the same weights and input."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from helpers import REPO_ROOT, fill_seeded_weights, state_dict_signature
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope

SEED = 0
IMAGE_SIZE = 64


def hrnet_extra(width, stage4_modules=3, stage1_block='BOTTLENECK'):
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


def gcb(ratio, stages=(False, True, True, True), position='after_conv3', **kwargs):
    return [dict(cfg=dict(type='ContextBlock', ratio=ratio, **kwargs), stages=stages,
                 position=position)]


def attention(attention_type):
    return [dict(cfg=dict(type='GeneralizedAttention', spatial_range=-1, num_heads=8,
                          attention_type=attention_type, kv_stride=2),
                 stages=(False, False, True, True), position='after_conv2')]


DCN = dict(dcn=dict(type='DCN', deform_groups=1, fallback_on_stride=False),
           stage_with_dcn=(False, True, True, True))
HRNET_W18 = dict(type='HRNet', extra=hrnet_extra(18))

# MMDetection's outputs (shape, sum, mean |x|) for these configs (a backbone, or a backbone
# and neck run one after the other), with weights from fill_seeded_weights(SEED) and the
# seeded (1, 3, 64, 64) input below, measured by tools/dev/measure_more_backbones.py, which
# also loads MMDetection's state_dict into detlab's model strictly and checks the outputs
# elementwise. HRNet's branch sums grow large with these untrained weights.
MMDET_OUTPUTS = {
    'hrnetv2_w18': (
        (HRNET_W18, ),
        [((1, 18, 16, 16), 715304206336.0, 155230944.0),
         ((1, 36, 8, 8), 211800981504.0, 91927512.0),
         ((1, 72, 4, 4), 90863607808.0, 78874656.0),
         ((1, 144, 2, 2), 49431060480.0, 85817816.0)]),
    'hrnetv2_w32_basic_stage1_single_output': (
        (dict(type='HRNet', extra=hrnet_extra(32, stage4_modules=2, stage1_block='BASIC'),
              multiscale_output=False), ),
        [((1, 32, 16, 16), 78449803264.0, 9576392.0)]),
    'hrnetv2_w18_hrfpn': (
        (HRNET_W18, dict(type='HRFPN', in_channels=[18, 36, 72, 144], out_channels=64)),
        [((1, 64, 16, 16), -602557841408.0, 252426912.0),
         ((1, 64, 8, 8), -34119739392.0, 207755984.0),
         ((1, 64, 4, 4), -14875924480.0, 182962960.0),
         ((1, 64, 2, 2), 7407802368.0, 157246224.0),
         ((1, 64, 1, 1), 383922048.0, 70717576.0)]),
    'hrnetv2_w18_hrfpn_max_stride2': (
        (HRNET_W18, dict(type='HRFPN', in_channels=[18, 36, 72, 144], out_channels=32,
                         num_outs=4, pooling_type='MAX', stride=2)),
        [((1, 32, 8, 8), -112286941184.0, 197627664.0),
         ((1, 32, 4, 4), 21533843456.0, 170746912.0),
         ((1, 32, 2, 2), 6989599232.0, 164026848.0),
         ((1, 32, 1, 1), 12748576.0, 133830240.0)]),
    'res2net50_26w_4s': (
        (dict(type='Res2Net', depth=50), ),
        [((1, 256, 16, 16), 215263.422, 3.284659), ((1, 512, 8, 8), 1399362.25, 42.705147),
         ((1, 1024, 4, 4), 32872018.0, 2006.348755), ((1, 2048, 2, 2), 53076468.0, 6479.061035)]),
    'res2net50_14w_8s_frozen': (
        (dict(type='Res2Net', depth=50, scales=8, base_width=14, frozen_stages=1,
              out_indices=(0, 3)), ),
        [((1, 256, 16, 16), 894469.688, 13.648524), ((1, 2048, 2, 2), 3447675392.0, 420858.8125)]),
    # style, deep_stem and avg_down are fixed in Res2Net, as in MMDetection.
    'res2net50_48w_2s_caffe_ignored': (
        (dict(type='Res2Net', depth=50, scales=2, base_width=48, style='caffe', deep_stem=False,
              avg_down=False), ),
        [((1, 256, 16, 16), 159349.812, 2.431485), ((1, 512, 8, 8), 480350.188, 14.659124),
         ((1, 1024, 4, 4), 3435102.5, 209.662018), ((1, 2048, 2, 2), 5042701.0, 615.564087)]),
    'resnest50': (
        (dict(type='ResNeSt', depth=50, stem_channels=64, radix=2, reduction_factor=4,
              avg_down_stride=True), ),
        [((1, 256, 16, 16), 144943.375, 2.21166), ((1, 512, 8, 8), 347238.625, 10.596882),
         ((1, 1024, 4, 4), 2061307.5, 125.812225), ((1, 2048, 2, 2), 2465038.75, 300.908051)]),
    'resnest50_no_avd_radix1': (
        (dict(type='ResNeSt', depth=50, stem_channels=64, radix=1, avg_down_stride=False,
              out_indices=(1, 3)), ),
        [((1, 512, 8, 8), 53443.426, 1.630964), ((1, 2048, 2, 2), 121890.68, 14.879233)]),
    'resnest50_groups2_radix4': (
        (dict(type='ResNeSt', depth=50, stem_channels=32, groups=2, base_width=40, radix=4,
              reduction_factor=2), ),
        [((1, 256, 16, 16), 105558.75, 1.610699), ((1, 512, 8, 8), 229279.5, 6.997055),
         ((1, 1024, 4, 4), 1453556.625, 88.718056), ((1, 2048, 2, 2), 1465014.5, 178.834778)]),
    'resnet50_gcb_r16_c3_c5': (
        (dict(type='ResNet', depth=50, plugins=gcb(1. / 16)), ),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 346054.188, 10.560736),
         ((1, 1024, 4, 4), 2412004.5, 147.217072), ((1, 2048, 2, 2), 3271804.25, 399.390167)]),
    'resnext50_32x4d_dcn_gcb_r4_c3_c5': (
        (dict(type='ResNeXt', depth=50, groups=32, base_width=4, plugins=gcb(1. / 4), **DCN), ),
        [((1, 256, 16, 16), 150582.906, 2.297713), ((1, 512, 8, 8), 182646.422, 5.573926),
         ((1, 1024, 4, 4), 112604.18, 6.872814), ((1, 2048, 2, 2), 55210.785, 6.739598)]),
    'resnet50_gcb_avg_channel_mul_after_conv2': (
        (dict(type='ResNet', depth=50,
              plugins=gcb(1. / 4, (False, False, True, True), 'after_conv2', pooling_type='avg',
                          fusion_types=('channel_mul', ))), ),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 324539.562, 9.904161),
         ((1, 1024, 4, 4), 634830.625, 38.746986), ((1, 2048, 2, 2), 483680.719, 59.043056)]),
    'resnet50_attn0010_dcn': (
        (dict(type='ResNet', depth=50, plugins=attention('0010'), **DCN), ),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 132323.906, 4.038205),
         ((1, 1024, 4, 4), 77092.773, 4.705369), ((1, 2048, 2, 2), 35309.09, 4.310192)]),
    'resnet50_attn1111': (
        (dict(type='ResNet', depth=50, plugins=attention('1111')), ),
        [((1, 256, 16, 16), 113357.57, 1.729699), ((1, 512, 8, 8), 324539.562, 9.904161),
         ((1, 1024, 4, 4), 2294706.75, 140.057785), ((1, 2048, 2, 2), 3220316.5, 393.105042)]),
}


def build(*cfgs):
    return torch.nn.Sequential(*[MODELS.build(dict(cfg)) for cfg in cfgs])


@pytest.mark.parametrize('case', sorted(MMDET_OUTPUTS))
def test_outputs_match_mmdetection_for_the_same_weights(case):
    cfgs, expected = MMDET_OUTPUTS[case]
    model = build(*cfgs).eval()
    fill_seeded_weights(model, SEED)
    x = torch.rand(1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(SEED))
    with torch.no_grad():
        outputs = model(x)
    assert len(outputs) == len(expected)
    for out, (shape, total, mean_abs) in zip(outputs, expected):
        assert tuple(out.shape) == shape
        assert out.sum().item() == pytest.approx(total, rel=1e-4)
        assert out.abs().mean().item() == pytest.approx(mean_abs, rel=1e-4)


def test_plugin_keys_are_mmdetections():
    gc_keys = build(dict(type='ResNet', depth=50, plugins=gcb(1. / 16))).state_dict()
    assert gc_keys['0.layer2.0.context_block.channel_add_conv.0.weight'].shape == (32, 512, 1, 1)
    assert not any('context_block' in key for key in gc_keys if key.startswith('0.layer1.'))
    attn_keys = build(dict(type='ResNet', depth=50, plugins=attention('1111'))).state_dict()
    assert '0.layer3.5.gen_attention_block.query_conv.weight' in attn_keys
    assert not any('gen_attention' in key for key in attn_keys if key.startswith('0.layer2.'))


def test_hrnet_keeps_batchnorm_in_eval_mode_with_norm_eval():
    model = MODELS.build(dict(HRNET_W18)).train()
    norms = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    model = MODELS.build(dict(HRNET_W18, norm_eval=False)).train()
    assert all(m.training for m in model.modules() if isinstance(m, _BatchNorm))


def test_hrnet_state_dict_names_follow_mmdetection():
    keys = MODELS.build(dict(HRNET_W18)).state_dict()
    assert keys['layer1.0.downsample.0.weight'].shape == (256, 64, 1, 1)
    assert keys['transition1.0.0.weight'].shape == (18, 256, 3, 3)
    assert keys['transition3.3.0.0.weight'].shape == (144, 72, 3, 3)
    assert keys['stage4.2.fuse_layers.3.0.1.0.weight'].shape == (18, 18, 3, 3)
    assert keys['stage4.2.fuse_layers.0.3.0.weight'].shape == (18, 144, 1, 1)
    assert 'transition2.0.0.weight' not in keys  # unchanged widths need no transition


@pytest.mark.parametrize('cfg,match', [
    (dict(type='HRNet', extra={k: v for k, v in hrnet_extra(18).items() if k != 'stage3'}),
     "'stage3' is missing"),
    (dict(type='HRNet', extra=dict(hrnet_extra(18), stage2=dict(
        hrnet_extra(18)['stage2'], block='BASICBLOCK'))), "valid blocks are"),
    (dict(type='HRNet', extra=dict(hrnet_extra(18), stage2=dict(
        hrnet_extra(18)['stage2'], num_channels=(18, )))), "num_branches=2"),
    (dict(type='HRFPN', in_channels=[18, 36], out_channels=8, pooling_type='SUM'),
     "pooling_type must be one of"),
    (dict(type='HRFPN', in_channels=(18, 36), out_channels=8), 'list of ints'),
    (dict(type='Res2Net', depth=50, scales=1), 'scales must be > 1'),
    (dict(type='Res2Net', depth=34), 'valid depths'),
    (dict(type='ResNeSt', depth=50, radix=0), 'radix must be >= 1'),
])
def test_bad_arguments_are_named(cfg, match):
    with pytest.raises(AssertionError, match=match):
        MODELS.build(cfg)


def test_hrfpn_refuses_a_wrong_number_of_inputs():
    neck = MODELS.build(dict(type='HRFPN', in_channels=[4, 8], out_channels=8))
    with pytest.raises(AssertionError, match='got 1 inputs, built for 2'):
        neck([torch.rand(1, 4, 8, 8)])


def test_mmsyncbn_is_batchnorm_with_mmcvs_keys_outside_a_distributed_run():
    with DefaultScope.overwrite_default_scope('detlab'):
        model = MODELS.build(dict(type='ResNet', depth=18, base_channels=8,
                                  norm_cfg=dict(type='MMSyncBN', requires_grad=True)))
        reference = MODELS.build(dict(type='ResNet', depth=18, base_channels=8))
    assert type(model.bn1).__name__ == 'MMSyncBN'
    assert model.state_dict().keys() == reference.state_dict().keys()
    fill_seeded_weights(reference, SEED)
    model.load_state_dict(reference.state_dict())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(SEED))
    model.train(), reference.train()
    for got, want in zip(model(x), reference(x)):
        assert torch.allclose(got, want, atol=1e-6)
    with DefaultScope.overwrite_default_scope('detlab'), pytest.raises(
            AssertionError, match='stats_mode'):
        MODELS.build(dict(type='ResNet', depth=18,
                          norm_cfg=dict(type='MMSyncBN', stats_mode='mean')))


def test_mmsyncbn_config_builds_mmdetections_state_dict():
    # MMSyncBN in the backbone, FPN, RPN and RoI heads; (entries, SHA-1 of the sorted
    # (key, shape) list) measured by tools/dev/measure_more_backbones.py --configs.
    path = (REPO_ROOT / 'tests/data/mmdet_3.3_configs/simple_copy_paste' /
            'mask-rcnn_r50_fpn_rpn-2conv_4conv1fc_syncbn-all_32xb2-ssj-270k_coco.py')
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('detlab'):
        model = MODELS.build(cfg.model)
    assert type(model.roi_head.bbox_head.shared_convs[0].bn).__name__ == 'MMSyncBN'
    assert state_dict_signature(model) == (432, '59787920c9c30b74bd6907a6384f3afefa19042b')


@pytest.mark.parametrize('address,name', [
    ('open-mmlab://msra/hrnetv2_w18', 'hrnetv2_w18-00eb2006.pth'),
    ('open-mmlab://msra/hrnetv2_w32', 'hrnetv2_w32-dc9eeb4f.pth'),
    ('open-mmlab://msra/hrnetv2_w40', 'hrnetv2_w40-ed0b031c.pth'),
    ('open-mmlab://res2net101_v1d_26w_4s', 'res2net101_v1d_26w_4s_mmdetv2-f0a600f9.pth'),
    ('open-mmlab://resnest50', 'resnest50_d2-7497a55b.pth'),
    ('open-mmlab://resnest101', 'resnest101_d2-f3b931b2.pth'),
])
def test_pretrained_names_resolve_offline_to_the_hub_file(address, name, tmp_path, monkeypatch):
    from detlab.utils.checkpoint import resolve_checkpoint
    monkeypatch.setattr(torch.hub, 'get_dir', lambda: str(tmp_path))
    with pytest.raises(RuntimeError) as error:
        resolve_checkpoint(address)
    expected = tmp_path / 'checkpoints' / name
    assert f'https://download.openmmlab.com/pretrain/third_party/{name}' in str(error.value)
    assert str(expected) in str(error.value)
    expected.parent.mkdir()
    expected.write_bytes(b'')
    assert resolve_checkpoint(address) == str(expected)


def test_default_init_and_zero_init_residual():
    hrnet = MODELS.build(dict(type='HRNet', extra=hrnet_extra(4, stage4_modules=1)))
    hrnet.init_weights()
    assert torch.all(hrnet.norm1.weight == 1) and hrnet.conv1.weight.std() > 0
    neck = MODELS.build(dict(type='HRFPN', in_channels=[4, 8], out_channels=8))
    neck.init_weights()
    assert torch.all(neck.reduction_conv.conv.bias == 0)
    for cfg in (dict(type='Res2Net', depth=50, base_channels=16),
                dict(type='ResNeSt', depth=50, base_channels=16, stem_channels=16)):
        model = MODELS.build(cfg)
        model.init_weights()
        assert torch.all(model.layer1[0].norm3.weight == 0)
        assert torch.all(model.layer1[0].norm1.weight == 1)
