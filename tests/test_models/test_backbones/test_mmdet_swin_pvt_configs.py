"""MMDetection 3.3's Swin and PVT configs build in detlab with MMDetection's state_dict keys
and shapes, detlab's copies under configs/ are MMDetection's, their pretrained URLs
resolve offline, and the original Swin-T checkpoint's keys convert onto the backbone."""
import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT, state_dict_signature
from detlab.models.layers.transformer import swin_converter
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope
from detlab.utils.checkpoint import hub_cache_path, resolve_checkpoint

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# (entries, SHA-1 of the sorted (key, shape) list) of the models MMDetection 3.3 builds
# from these files, measured by tools/dev/measure_backbones.py --configs.
MMDET_SIGNATURES = {
    'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py': (231, '92e945eee8a4d4a133c0a30d69f35bbbd5b6f8bf'),
    'swin/mask-rcnn_swin-t-p4-w7_fpn_ms-crop-3x_coco.py': (231, '92e945eee8a4d4a133c0a30d69f35bbbd5b6f8bf'),
    'swin/mask-rcnn_swin-t-p4-w7_fpn_amp-ms-crop-3x_coco.py': (231, '92e945eee8a4d4a133c0a30d69f35bbbd5b6f8bf'),
    'swin/mask-rcnn_swin-s-p4-w7_fpn_amp-ms-crop-3x_coco.py': (399, '7abbc9c25284eb8b9195b3e5643cdb1fe8f40a7a'),
    'swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py': (223, 'dbfbeb17164dfd86143580db07fcedfb564ae1b1'),
    'dino/dino-5scale_swin-l_8xb2-12e_coco.py': (669, '37176c6f722e9530f91219ae28fe28af8e5592fe'),
    'dino/dino-5scale_swin-l_8xb2-36e_coco.py': (669, '37176c6f722e9530f91219ae28fe28af8e5592fe'),
    'rtmdet/rtmdet_l_swin_b_4xb32-100e_coco.py': (568, '2b0790e6dd6fdd9b907d06421a7d51b7f0438755'),
    'rtmdet/rtmdet_l_swin_b_p6_4xb16-100e_coco.py': (684, 'f452768b6cf0f3363c8b8217d5a25f224d5365ec'),
    'pvt/retinanet_pvt-t_fpn_1x_coco.py': (176, '9dc36a4c8dc0e6a2a8a3a64b697e4f04d25b3fbb'),
    'pvt/retinanet_pvt-s_fpn_1x_coco.py': (300, 'd4105370b1d433039430c1ffac921348cfacbf6b'),
    'pvt/retinanet_pvt-m_fpn_1x_coco.py': (492, 'f371f28c12669c981e940475719c4a389e3289af'),
    'pvt/retinanet_pvt-l_fpn_1x_coco.py': (700, 'b0d71c0a19ae8324f1cf30766a69c7e05fc7ac2c'),
    'pvt/retinanet_pvtv2-b0_fpn_1x_coco.py': (196, '8b5e0c91cc61603deba929bb15f32058ede2ac5c'),
    'pvt/retinanet_pvtv2-b1_fpn_1x_coco.py': (196, '26c4c53e37a7b51ece362bff6d1beb43737acf4a'),
    'pvt/retinanet_pvtv2-b2_fpn_1x_coco.py': (336, 'e45da8b28ae5d78ed304a35f3bf16aab3d14b60a'),
    'pvt/retinanet_pvtv2-b3_fpn_1x_coco.py': (552, '1b6eb979e1b8f2e67148e4d8c33b6d422655555d'),
    'pvt/retinanet_pvtv2-b4_fpn_1x_coco.py': (786, '25fedada16dd6dabd80331971a33f3a0e71790a1'),
    'pvt/retinanet_pvtv2-b5_fpn_1x_coco.py': (984, '2e7701bf90b554de183faa8ae7ac4cda5cc6c922'),
}


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    return cfg


def build_on_meta(path):
    """The config's model with parameters on the 'meta' device: keys and shapes, no memory."""
    with torch.device('meta'):
        return MODELS.build(load(path).model)


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_mmdet_config_builds_mmdets_state_dict(path):
    assert state_dict_signature(build_on_meta(MMDET_CONFIGS / path)) == MMDET_SIGNATURES[path]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_detlab_config_is_mmdets_and_builds_the_same(path):
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()
    assert state_dict_signature(build_on_meta(REPO_ROOT / 'configs' / path)) == \
        MMDET_SIGNATURES[path]


def test_a_swin_detector_builds_and_runs_on_the_cpu():
    model = MODELS.build(load(MMDET_CONFIGS / 'swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py').model)
    feats = model.eval().extract_feat(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 256, 8, 12), (1, 256, 4, 6), (1, 256, 2, 3),
                                               (1, 256, 1, 2), (1, 256, 1, 1)]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_pretrained_urls_resolve_offline_with_the_url_and_the_path(path, monkeypatch, tmp_path):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    checkpoint = Config.fromfile(str(MMDET_CONFIGS / path)).model.backbone.init_cfg.checkpoint
    assert checkpoint.startswith(('https://github.com/SwinTransformer/',
                                  'https://github.com/whai362/PVT/'))
    with pytest.raises(RuntimeError) as error:
        resolve_checkpoint(checkpoint)
    assert checkpoint in str(error.value) and hub_cache_path(checkpoint) in str(error.value)
    cached = tmp_path / 'hub' / 'checkpoints' / checkpoint.rsplit('/', 1)[1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'')
    assert resolve_checkpoint(checkpoint) == str(cached)


def original_swin_t_shapes():
    """Keys and shapes of the original repository's swin_tiny_patch4_window7_224.pth
    (github.com/microsoft/Swin-Transformer, models/swin_transformer.py): Swin-T at 224
    pixels, 7x7 windows, an ImageNet-1k classifier."""
    shapes = {'patch_embed.proj.weight': (96, 3, 4, 4), 'patch_embed.proj.bias': (96, ),
              'patch_embed.norm.weight': (96, ), 'patch_embed.norm.bias': (96, ),
              'norm.weight': (768, ), 'norm.bias': (768, ),
              'head.weight': (1000, 768), 'head.bias': (1000, )}
    for stage, (depth, heads) in enumerate(zip((2, 2, 6, 2), (3, 6, 12, 24))):
        channels, resolution = 96 * 2**stage, 56 // 2**stage
        for block in range(depth):
            prefix = f'layers.{stage}.blocks.{block}.'
            for norm in ('norm1', 'norm2'):
                shapes.update({prefix + f'{norm}.weight': (channels, ),
                               prefix + f'{norm}.bias': (channels, )})
            shapes.update({
                prefix + 'attn.relative_position_bias_table': (13 * 13, heads),
                prefix + 'attn.relative_position_index': (49, 49),
                prefix + 'attn.qkv.weight': (3 * channels, channels),
                prefix + 'attn.qkv.bias': (3 * channels, ),
                prefix + 'attn.proj.weight': (channels, channels),
                prefix + 'attn.proj.bias': (channels, ),
                prefix + 'mlp.fc1.weight': (4 * channels, channels),
                prefix + 'mlp.fc1.bias': (4 * channels, ),
                prefix + 'mlp.fc2.weight': (channels, 4 * channels),
                prefix + 'mlp.fc2.bias': (channels, )})
            if block % 2 and resolution > 7:  # shifted windows keep their mask as a buffer
                shapes[prefix + 'attn_mask'] = ((resolution // 7)**2, 49, 49)
        if stage < 3:
            shapes.update({f'layers.{stage}.downsample.reduction.weight':
                           (2 * channels, 4 * channels),
                           f'layers.{stage}.downsample.norm.weight': (4 * channels, ),
                           f'layers.{stage}.downsample.norm.bias': (4 * channels, )})
    return shapes


def test_original_swin_t_checkpoint_keys_convert_onto_the_swin_t_backbone():
    original = {k: torch.zeros(shape) for k, shape in original_swin_t_shapes().items()}
    converted = {k[len('backbone.'):]: tuple(v.shape)
                 for k, v in swin_converter(original).items()}
    backbone = build_on_meta(REPO_ROOT / 'configs/swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py')
    own = {k[len('backbone.'):]: tuple(v.shape) for k, v in backbone.state_dict().items()
           if k.startswith('backbone.')}
    loaded = set(own) & set(converted)
    assert all(own[k] == converted[k] for k in loaded)
    # MMDetection's per-output norms are new; the classifier's final norm and the
    # shifted-window masks (recomputed in forward) are left out.
    assert set(own) - loaded == {f'norm{i}.{p}' for i in range(4) for p in ('weight', 'bias')}
    assert set(converted) - loaded == {'norm.weight', 'norm.bias'} | {
        k for k in converted if k.endswith('attn_mask')}
