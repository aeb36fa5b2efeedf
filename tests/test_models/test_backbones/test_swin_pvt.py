"""SwinTransformer and PyramidVisionTransformer(V2) compute MMDetection 3.3's outputs for
the same weights, load the original repositories' checkpoints as MMDetection does
(offline, from the torch hub cache), freeze and checkpoint like MMDetection's."""
import pytest
import torch

from helpers import fill_seeded_weights, original_pvt_checkpoint, original_swin_checkpoint
from detlab.models.layers.transformer import pvt_convert, swin_converter
from detlab.registry import MODELS

SEED = 0
CONVERTED_SEED = 1
IMAGE_SIZE = 64
SWIN_TINY32 = dict(type='SwinTransformer', embed_dims=32, depths=(2, 2, 2, 2),
                   num_heads=(1, 2, 4, 8), window_size=4)
PVT_TINY16 = dict(type='PyramidVisionTransformer', embed_dims=16, num_layers=[1, 1, 1, 2])
PVTV2_TINY16 = dict(type='PyramidVisionTransformerV2', embed_dims=16, num_layers=[1, 1, 1, 2],
                    out_indices=(1, 2, 3))
# MMDetection 3.3's outputs (shape, sum, mean |x|) with weights from fill_seeded_weights(SEED)
# and the seeded (1, 3, 64, 64) input, measured by tools/dev/measure_backbones.py, which also
# loads MMDetection's state_dict into detlab's backbone strictly and compares elementwise.
MMDET_OUTPUTS = {
    'swin_tiny32': (
        SWIN_TINY32,
        [((1, 32, 16, 16), 349.401, 0.818307), ((1, 64, 8, 8), -17.989, 0.794843),
         ((1, 128, 4, 4), -13.501, 0.856441), ((1, 256, 2, 2), 0.844, 0.798696)]),
    'swin_w3_no_patch_norm': (
        dict(type='SwinTransformer', embed_dims=16, depths=(2, 2, 1, 1), num_heads=(2, 2, 2, 2),
             window_size=3, qkv_bias=False, patch_norm=False, out_indices=(1, 3), mlp_ratio=2),
        [((1, 32, 8, 8), 46.986, 0.857747), ((1, 128, 2, 2), 0.321, 0.780356)]),
    'swin_abs_pos_embed': (
        dict(type='SwinTransformer', embed_dims=16, depths=(1, 1, 2, 1), num_heads=(1, 1, 2, 2),
             window_size=4, pretrain_img_size=64, use_abs_pos_embed=True, out_indices=(0, 2)),
        [((1, 16, 16, 16), 157.181, 0.822338), ((1, 64, 4, 4), 13.176, 0.823072)]),
    'swin_t': (
        dict(type='SwinTransformer', embed_dims=96, depths=[2, 2, 6, 2],
             num_heads=[3, 6, 12, 24], window_size=7, mlp_ratio=4, drop_path_rate=0.2),
        [((1, 96, 16, 16), -31.838, 0.780144), ((1, 192, 8, 8), 277.673, 0.806374),
         ((1, 384, 4, 4), -22.996, 0.821103), ((1, 768, 2, 2), 1.194, 0.807545)]),
    'pvt_tiny16': (
        PVT_TINY16,
        [((1, 16, 16, 16), -2033.525, 1.879708), ((1, 32, 8, 8), -245.375, 1.625786),
         ((1, 80, 4, 4), 80.942, 1.923957), ((1, 128, 2, 2), -85.599, 2.83219)]),
    'pvt_t': (
        dict(type='PyramidVisionTransformer', num_layers=[2, 2, 2, 2]),
        [((1, 64, 16, 16), 2260.43, 2.770227), ((1, 128, 8, 8), 2899.931, 2.869485),
         ((1, 320, 4, 4), 503.429, 2.821749), ((1, 512, 2, 2), -685.421, 3.12317)]),
    'pvtv2_tiny16': (
        PVTV2_TINY16,
        [((1, 32, 8, 8), 2.159, 0.819991), ((1, 80, 4, 4), 5.182, 0.808671),
         ((1, 128, 2, 2), 0.273, 0.791672)]),
    'pvtv2_b0': (
        dict(type='PyramidVisionTransformerV2', embed_dims=32, num_layers=[2, 2, 2, 2]),
        [((1, 32, 16, 16), -174.158, 0.815093), ((1, 64, 8, 8), 6.578, 0.796626),
         ((1, 160, 4, 4), -22.011, 0.790346), ((1, 256, 2, 2), 23.569, 0.790136)]),
}
# (source config, loading config or None for the same, checkpoint without index buffers,
# MMDetection's outputs) after init_weights() from the original-format checkpoint that
# tests/helpers.py writes for the source's weights filled with CONVERTED_SEED
# (measure_backbones.py --converted, which also checks both load the same weights).
MMDET_CONVERTED_OUTPUTS = {
    'swin_converted': (
        SWIN_TINY32, None, False,
        [((1, 32, 16, 16), -278.642, 0.852702), ((1, 64, 8, 8), -21.761, 0.869838),
         ((1, 128, 4, 4), 53.354, 0.790591), ((1, 256, 2, 2), -2.971, 0.814603)]),
    # Window 4 -> 3: the relative position bias tables are resized bicubically.
    'swin_converted_window_3': (
        SWIN_TINY32, dict(SWIN_TINY32, window_size=3), True,
        [((1, 32, 16, 16), -272.881, 0.848719), ((1, 64, 8, 8), -24.793, 0.862326),
         ((1, 128, 4, 4), 47.135, 0.797967), ((1, 256, 2, 2), -7.668, 0.81192)]),
    'pvt_converted': (
        PVT_TINY16, None, False,
        [((1, 16, 16, 16), -2889.006, 2.196093), ((1, 32, 8, 8), 15.662, 1.599917),
         ((1, 80, 4, 4), -320.799, 2.203035), ((1, 128, 2, 2), 31.676, 3.164626)]),
    'pvtv2_converted': (
        PVTV2_TINY16, None, False,
        [((1, 32, 8, 8), 58.656, 0.793013), ((1, 80, 4, 4), -20.883, 0.822913),
         ((1, 128, 2, 2), 11.622, 0.793761)]),
}
SWIN_T_URL = ('https://github.com/SwinTransformer/storage/releases/download/v1.0.0/'
              'swin_tiny_patch4_window7_224.pth')
PVT_URL = 'https://github.com/whai362/PVT/releases/download/v2/pvt_tiny.pth'


def _seeded_input(size=IMAGE_SIZE):
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(SEED))


def _check(outputs, expected):
    assert len(outputs) == len(expected)
    for out, (shape, total, mean_abs) in zip(outputs, expected):
        assert tuple(out.shape) == shape
        # LayerNorm outputs sum to about 0, so their sums (rounded to 3 decimals) get an
        # absolute tolerance; the mean |x| is pinned relatively.
        assert out.sum().item() == pytest.approx(total, rel=1e-4, abs=2e-3)
        assert out.abs().mean().item() == pytest.approx(mean_abs, rel=1e-4)


@pytest.mark.parametrize('case', sorted(MMDET_OUTPUTS))
def test_outputs_match_mmdetection_for_the_same_weights(case):
    cfg, expected = MMDET_OUTPUTS[case]
    model = MODELS.build(cfg).eval()
    fill_seeded_weights(model, SEED)
    with torch.no_grad():
        _check(model(_seeded_input()), expected)


def _original_checkpoint(cfg, without_buffers=False):
    source = MODELS.build(dict(cfg))
    fill_seeded_weights(source, CONVERTED_SEED)
    weights = source.state_dict()
    if without_buffers:
        weights = {k: v for k, v in weights.items() if 'relative_position_index' not in k}
    write = (original_swin_checkpoint if cfg['type'] == 'SwinTransformer' else
             original_pvt_checkpoint)
    return source, write(weights)


def _put_in_hub_cache(monkeypatch, tmp_path, url, checkpoint):
    """Save ``checkpoint`` where torch.hub would have cached ``url`` under TORCH_HOME=tmp."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cache = tmp_path / 'hub' / 'checkpoints'
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, cache / url.rsplit('/', 1)[1])


@pytest.mark.parametrize('case', sorted(MMDET_CONVERTED_OUTPUTS))
def test_original_checkpoint_from_the_hub_cache_loads_as_in_mmdetection(
        case, monkeypatch, tmp_path):
    source_cfg, target_cfg, without_buffers, expected = MMDET_CONVERTED_OUTPUTS[case]
    source, checkpoint = _original_checkpoint(source_cfg, without_buffers)
    url = SWIN_T_URL if source_cfg['type'] == 'SwinTransformer' else PVT_URL
    _put_in_hub_cache(monkeypatch, tmp_path, url, checkpoint)
    model = MODELS.build(dict(target_cfg or source_cfg, convert_weights=True,
                              init_cfg=dict(type='Pretrained', checkpoint=url)))
    model.init_weights()
    if target_cfg is None:  # the conversion restores the seeded weights exactly
        expected_state = source.state_dict()
        assert all(torch.equal(value, expected_state[key])
                   for key, value in model.state_dict().items())
    with torch.no_grad():
        _check(model.eval()(_seeded_input()), expected)


def test_relative_position_bias_tables_are_resized_bicubically(monkeypatch, tmp_path):
    source, checkpoint = _original_checkpoint(SWIN_TINY32, without_buffers=True)
    _put_in_hub_cache(monkeypatch, tmp_path, SWIN_T_URL, checkpoint)
    model = MODELS.build(dict(SWIN_TINY32, window_size=3, convert_weights=True,
                              init_cfg=dict(type='Pretrained', checkpoint=SWIN_T_URL)))
    model.init_weights()
    key = 'stages.2.blocks.1.attn.w_msa.relative_position_bias_table'
    table = source.state_dict()[key]  # (7 * 7, 4 heads)
    want = torch.nn.functional.interpolate(table.T.reshape(1, 4, 7, 7), size=(5, 5),
                                           mode='bicubic').reshape(4, 25).T
    assert torch.equal(model.state_dict()[key], want)


def test_mmdetection_format_checkpoint_loads_without_conversion(tmp_path):
    source = MODELS.build(dict(SWIN_TINY32))
    fill_seeded_weights(source, CONVERTED_SEED)
    path = tmp_path / 'detector.pth'
    weights = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    torch.save({'state_dict': dict(weights, **{'neck.conv.weight': torch.ones(1)})}, path)
    model = MODELS.build(dict(SWIN_TINY32, init_cfg=dict(type='Pretrained',
                                                         checkpoint=str(path))))
    model.init_weights()
    assert all(torch.equal(v, source.state_dict()[k]) for k, v in model.state_dict().items())


def test_original_checkpoint_without_convert_weights_names_the_prefix(tmp_path):
    _, checkpoint = _original_checkpoint(SWIN_TINY32)
    path = tmp_path / 'swin.pth'
    torch.save(checkpoint, path)
    model = MODELS.build(dict(SWIN_TINY32, init_cfg=dict(type='Pretrained',
                                                         checkpoint=str(path))))
    with pytest.raises(KeyError, match="'backbone.'.*prefixes are .*'layers.'.*convert_weights"):
        model.init_weights()


@pytest.mark.parametrize('cfg, url', [(SWIN_TINY32, SWIN_T_URL), (PVT_TINY16, PVT_URL)])
def test_absent_pretrained_file_gives_the_url_and_the_path(cfg, url, monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    model = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=url)))
    name = url.rsplit('/', 1)[1]
    with pytest.raises(RuntimeError) as error:
        model.init_weights()
    assert url in str(error.value)
    assert str(tmp_path / 'hub' / 'checkpoints' / name) in str(error.value)


def test_converters_keep_every_weight_and_drop_the_classifier():
    for cfg, write, convert in [(SWIN_TINY32, original_swin_checkpoint, swin_converter),
                                (PVT_TINY16, original_pvt_checkpoint, pvt_convert),
                                (PVTV2_TINY16, original_pvt_checkpoint, pvt_convert)]:
        model = MODELS.build(dict(cfg))
        fill_seeded_weights(model, CONVERTED_SEED)
        original = write(model.state_dict())
        converted = convert(original.get('model', original))
        converted = {k[len('backbone.'):] if k.startswith('backbone.') else k: v
                     for k, v in converted.items()}
        assert not any(k.startswith(('head', 'cls_token')) for k in converted)
        assert set(model.state_dict()) <= set(converted)
        assert all(torch.equal(v, converted[k]) for k, v in model.state_dict().items())


def test_swin_patch_merging_conversion_reorders_the_2x2_neighbourhood():
    # Original order of the four C-channel blocks: x[0::2, 0::2], x[1::2, 0::2],
    # x[0::2, 1::2], x[1::2, 1::2]; nn.Unfold: channel-major, pixels row-major.
    channels = 2
    original = torch.arange(4 * channels, dtype=torch.float32)[None]  # block b, channel c: 2b+c
    converted = swin_converter({'layers.0.downsample.reduction.weight': original})
    weight = converted['backbone.stages.0.downsample.reduction.weight']
    # Unfold column c * 4 + (row-major pixel p) must hold original block of p, channel c.
    block_of_pixel = [0, 2, 1, 3]
    want = [block_of_pixel[p] * channels + c for c in range(channels) for p in range(4)]
    assert weight[0].tolist() == want


def test_frozen_stages_stop_gradients_and_stay_in_eval():
    model = MODELS.build(dict(SWIN_TINY32, frozen_stages=2, drop_path_rate=0.1))
    model.train()
    frozen = [model.patch_embed, model.stages[0], model.stages[1], model.norm0, model.norm1]
    assert all(not p.requires_grad for m in frozen for p in m.parameters())
    assert all(not m.training for m in frozen)
    assert all(p.requires_grad for p in model.stages[2].parameters())
    assert model.stages[2].training and model.norm2.training


def test_with_cp_gives_the_same_outputs_and_gradients():
    plain = MODELS.build(dict(SWIN_TINY32, drop_path_rate=0.))
    fill_seeded_weights(plain, SEED)
    checkpointed = MODELS.build(dict(SWIN_TINY32, drop_path_rate=0., with_cp=True))
    checkpointed.load_state_dict(plain.state_dict())
    results = []
    for model in (plain, checkpointed):
        x = _seeded_input().requires_grad_()
        sum(o.square().sum() for o in model(x)).backward()
        results.append((x.grad, model.stages[1].blocks[0].attn.w_msa.qkv.weight.grad))
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(*results))


def test_inputs_not_a_multiple_of_the_window_are_padded():
    model = MODELS.build(dict(SWIN_TINY32)).eval()
    outputs = model(torch.rand(1, 3, 70, 90))
    assert [tuple(o.shape[2:]) for o in outputs] == [(18, 23), (9, 12), (5, 6), (3, 3)]


@pytest.mark.parametrize('cfg, message', [
    (dict(SWIN_TINY32, patch_size=8), 'strides'),
    (dict(SWIN_TINY32, out_indices=(4, )), 'out_indices'),
    (dict(SWIN_TINY32, num_heads=(1, 2, 4)), 'num_heads'),
    (dict(PVT_TINY16, num_heads=[1, 2]), 'num_heads has 2'),
    (dict(PVTV2_TINY16, patch_sizes=[4, 2, 2, 2]), 'patch_sizes'),
])
def test_bad_configs_are_refused_with_the_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)


def test_init_without_pretrained_weights_is_mmdetections():
    model = MODELS.build(dict(SWIN_TINY32))
    model.init_weights()
    qkv = model.stages[0].blocks[0].attn.w_msa.qkv
    assert qkv.weight.std().item() == pytest.approx(0.02, rel=0.2)
    assert torch.all(qkv.bias == 0) and torch.all(model.norm0.weight == 1)
    pvt = MODELS.build(dict(PVT_TINY16))
    pvt.init_weights()
    assert pvt.layers[0][1][0].pos_embed.std().item() == pytest.approx(0.02, rel=0.2)
