"""MMDetection 3.3's configs of other backbones build in detlab with MMDetection's
state_dict keys and shapes, and detlab's copies under configs/ build the same model."""
import pytest
from mmengine.config import Config

from helpers import REPO_ROOT, state_dict_signature
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# (entries, SHA-1 of the sorted (key, shape) list) of the models MMDetection 3.3 builds
# from these files, measured by tools/dev/measure_backbones.py --configs.
MMDET_SIGNATURES = {
    'retinanet/retinanet_x101-32x4d_fpn_1x_coco.py': (660, 'd5eef6edd487e4ea1c1c3d3e7a52ff36997aee76'),
    'retinanet/retinanet_x101-64x4d_fpn_1x_coco.py': (660, '51d2a702b99a80f8e5f3e31c0d83384596413fac'),
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_1x_coco.py': (654, '2629d45729c8b149137130136b21a18ad968e75a'),
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_1x_coco.py': (654, 'cb7fccf18dd8e766b8f778e6d06be53366b59c29'),
    'regnet/retinanet_regnetx-3.2GF_fpn_1x_coco.py': (516, '6be3ff6f41357ad85cdab4e9d9bed61d3e0715d2'),
    'regnet/retinanet_regnetx-1.6GF_fpn_1x_coco.py': (390, 'a501afd5fad425cd7fe11adeb54a95d5f9c9db50'),
    'regnet/retinanet_regnetx-800MF_fpn_1x_coco.py': (354, 'ac874b6b268bae2d4b3ae5a5bd057291bceb9332'),
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_1x_coco.py': (510, 'c73c93ecc98e955ef3d779b38bcdef3c6fe073d1'),
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_2x_coco.py': (510, 'c73c93ecc98e955ef3d779b38bcdef3c6fe073d1'),
    'regnet/faster-rcnn_regnetx-3.2GF_fpn_ms-3x_coco.py': (510, 'c73c93ecc98e955ef3d779b38bcdef3c6fe073d1'),
    'regnet/faster-rcnn_regnetx-400MF_fpn_ms-3x_coco.py': (456, '390b7129f611856a01103d99f0ffefd6c96d3a29'),
    'regnet/faster-rcnn_regnetx-800MF_fpn_ms-3x_coco.py': (348, '71c063f468f5ac3b82d9b31a7cdc837106452ac5'),
    'regnet/faster-rcnn_regnetx-1.6GF_fpn_ms-3x_coco.py': (384, 'ed4730a600091d08dafa6d1d1c0b59fb619da6b3'),
    'regnet/faster-rcnn_regnetx-4GF_fpn_ms-3x_coco.py': (474, '5ef821985b8e6053e8a0dd4d0a880a548969480b'),
    'faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py': (654, '6d2d07460bf89cca51df466c13c98b47b189927d'),
    'dcn/faster-rcnn_r50-dconv-c3-c5_fpn_1x_coco.py': (374, '8ea6ef198117adf1bb0ad2b5cd33e0a647d2014a'),
    'dcn/faster-rcnn_r101-dconv-c3-c5_fpn_1x_coco.py': (714, 'ef22b870c739058760edf7437f91b42fb94ef7cb'),
    'dcn/faster-rcnn_x101-32x4d-dconv-c3-c5_fpn_1x_coco.py': (714, 'bb2802e4ba22286be8fd4397a39419f2fd9a8245'),
    'dcnv2/faster-rcnn_r50-mdconv-c3-c5_fpn_1x_coco.py': (374, 'f6d56c3b80b2fd6f859d64b1acb5218209539788'),
    'dcnv2/faster-rcnn_r50-mdconv-group4-c3-c5_fpn_1x_coco.py': (374, '590dfe407f1dbb9dbbeedc254431639dcc0396e4'),
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_2x_coco.py': (654, '2629d45729c8b149137130136b21a18ad968e75a'),
    'faster_rcnn/faster-rcnn_x101-32x4d_fpn_ms-3x_coco.py': (654, '2629d45729c8b149137130136b21a18ad968e75a'),
    'faster_rcnn/faster-rcnn_x101-32x8d_fpn_ms-3x_coco.py': (654, 'aa8ce4f9e85ab7f27e090be8d0facac9c2f47e9a'),
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_2x_coco.py': (654, 'cb7fccf18dd8e766b8f778e6d06be53366b59c29'),
    'faster_rcnn/faster-rcnn_x101-64x4d_fpn_ms-3x_coco.py': (654, 'cb7fccf18dd8e766b8f778e6d06be53366b59c29'),
    'retinanet/retinanet_x101-32x4d_fpn_2x_coco.py': (660, 'd5eef6edd487e4ea1c1c3d3e7a52ff36997aee76'),
    'retinanet/retinanet_x101-64x4d_fpn_2x_coco.py': (660, '51d2a702b99a80f8e5f3e31c0d83384596413fac'),
    'retinanet/retinanet_x101-64x4d_fpn_ms-640-800-3x_coco.py': (660, '51d2a702b99a80f8e5f3e31c0d83384596413fac'),
    'rpn/rpn_x101-32x4d_fpn_1x_coco.py': (646, 'b8bd019764ead3aaf6f9bfce0a816ab0bdeb0c7a'),
    'rpn/rpn_x101-64x4d_fpn_1x_coco.py': (646, '6d378c2758294421f9d70593e5b4f357f262952e'),
    'fcos/fcos_x101-64x4d_fpn_gn-head_ms-640-800-2x_coco.py': (675, '4943aceee79cfc383b08924ca783576f2d20f2c2'),
    # hrnet, res2net, resnest, gcnet, empirical_attention: measure_more_backbones.py --configs
    'empirical_attention/faster-rcnn_r50-attn0010-dcn_fpn_1x_coco.py': (428, '4046647a9f9275f7f39fd212326c418b052335e4'),
    'empirical_attention/faster-rcnn_r50-attn0010_fpn_1x_coco.py': (402, 'fc352cbeb54ff5f56c8068d57ee493dba43e646a'),
    'empirical_attention/faster-rcnn_r50-attn1111-dcn_fpn_1x_coco.py': (464, '391b52a3a7186d38a0ab6d460e63f44426395e82'),
    'empirical_attention/faster-rcnn_r50-attn1111_fpn_1x_coco.py': (438, '350192d9c6f02f32b2d0eb409389c96add56612f'),
    'gcnet/mask-rcnn_r101-gcb-r16-c3-c5_fpn_1x_coco.py': (906, '9cc25da82555067369f279b9c14af212f0e05492'),
    'gcnet/mask-rcnn_r101-gcb-r4-c3-c5_fpn_1x_coco.py': (906, '555e36fa2261a005379f16c99293a595b15dd756'),
    'gcnet/mask-rcnn_r101-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py': (906, '9cc25da82555067369f279b9c14af212f0e05492'),
    'gcnet/mask-rcnn_r101-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py': (906, '555e36fa2261a005379f16c99293a595b15dd756'),
    'gcnet/mask-rcnn_r101-syncbn_fpn_1x_coco.py': (666, 'e5d6eb86a6f0961e8691781759b2dce5a5364fa9'),
    'gcnet/mask-rcnn_r50-gcb-r16-c3-c5_fpn_1x_coco.py': (464, '8e20b9395edfb73eeea7a96622f512777337d1fa'),
    'gcnet/mask-rcnn_r50-gcb-r4-c3-c5_fpn_1x_coco.py': (464, 'f910b377b0ce876bddf9a4be610a0aa3e826bc30'),
    'gcnet/mask-rcnn_r50-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py': (464, '8e20b9395edfb73eeea7a96622f512777337d1fa'),
    'gcnet/mask-rcnn_r50-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py': (464, 'f910b377b0ce876bddf9a4be610a0aa3e826bc30'),
    'gcnet/mask-rcnn_r50-syncbn_fpn_1x_coco.py': (360, '177b4c90f255167c43d8b132ff4b6a8350c95fc1'),
    'gcnet/mask-rcnn_x101-32x4d-syncbn-gcb-r16-c3-c5_fpn_1x_coco.py': (906, '18ca53ab1f07fd4060fcff8ab77fbb54bd000acb'),
    'gcnet/mask-rcnn_x101-32x4d-syncbn-gcb-r4-c3-c5_fpn_1x_coco.py': (906, 'f9c1fa652e463faed5b561193599422b0c61d295'),
    'gcnet/mask-rcnn_x101-32x4d-syncbn_fpn_1x_coco.py': (666, 'ca2ebd3acb910a74ab0f95af141ed6154f4abca3'),
    'hrnet/faster-rcnn_hrnetv2p-w18-1x_coco.py': (1856, '8a27d75bf2397b7f3b30cfccb094996c191902af'),
    'hrnet/faster-rcnn_hrnetv2p-w18-2x_coco.py': (1856, '8a27d75bf2397b7f3b30cfccb094996c191902af'),
    'hrnet/faster-rcnn_hrnetv2p-w32-1x_coco.py': (1856, '171bdf28cdaa92a97723c0a43ccc9e1e1b43a09f'),
    'hrnet/faster-rcnn_hrnetv2p-w32_2x_coco.py': (1856, '171bdf28cdaa92a97723c0a43ccc9e1e1b43a09f'),
    'hrnet/faster-rcnn_hrnetv2p-w40-1x_coco.py': (1856, 'ed6653f6d8aea6c65b2829638ef93a79a5c9c73f'),
    'hrnet/faster-rcnn_hrnetv2p-w40_2x_coco.py': (1856, 'ed6653f6d8aea6c65b2829638ef93a79a5c9c73f'),
    'hrnet/fcos_hrnetv2p-w18-gn-head_4xb4-1x_coco.py': (1877, 'f6d74a1e41373c6178018c8ce1b08e5b3820668e'),
    'hrnet/fcos_hrnetv2p-w18-gn-head_4xb4-2x_coco.py': (1877, 'f6d74a1e41373c6178018c8ce1b08e5b3820668e'),
    'hrnet/fcos_hrnetv2p-w18-gn-head_ms-640-800-4xb4-2x_coco.py': (1877, 'f6d74a1e41373c6178018c8ce1b08e5b3820668e'),
    'hrnet/fcos_hrnetv2p-w32-gn-head_4xb4-1x_coco.py': (1877, '67fc343c729cf5d49717e21c8a4a625b020fdbba'),
    'hrnet/fcos_hrnetv2p-w32-gn-head_4xb4-2x_coco.py': (1877, '67fc343c729cf5d49717e21c8a4a625b020fdbba'),
    'hrnet/fcos_hrnetv2p-w32-gn-head_ms-640-800-4xb4-2x_coco.py': (1877, '67fc343c729cf5d49717e21c8a4a625b020fdbba'),
    'hrnet/fcos_hrnetv2p-w40-gn-head_ms-640-800-4xb4-2x_coco.py': (1877, '6d91b74f799f83deecc33c83abd1d81a017daa60'),
    'hrnet/mask-rcnn_hrnetv2p-w18-1x_coco.py': (1868, '07932f9730d4fd156aa600e7cf9217848aea2967'),
    'hrnet/mask-rcnn_hrnetv2p-w18-2x_coco.py': (1868, '07932f9730d4fd156aa600e7cf9217848aea2967'),
    'hrnet/mask-rcnn_hrnetv2p-w32-1x_coco.py': (1868, '6237e6fbcee620b4d79de9ebadeb16767a147ddb'),
    'hrnet/mask-rcnn_hrnetv2p-w32-2x_coco.py': (1868, '6237e6fbcee620b4d79de9ebadeb16767a147ddb'),
    'hrnet/mask-rcnn_hrnetv2p-w40-2x_coco.py': (1868, '30ce282f5f52434602981a40231bf61f25d45322'),
    'hrnet/mask-rcnn_hrnetv2p-w40_1x_coco.py': (1868, '30ce282f5f52434602981a40231bf61f25d45322'),
    'res2net/faster-rcnn_res2net-101_fpn_2x_coco.py': (1062, 'de6b072c234f2ba09f1c4ef17fa293d61ceaedbc'),
    'res2net/mask-rcnn_res2net-101_fpn_2x_coco.py': (1074, 'e72da48d035f0dfcbe18c5eed71e80eb3c661b60'),
    'resnest/faster-rcnn_s101_fpn_syncbn-backbone+head_ms-range-1x_coco.py': (985, '85172e4e1fe96808b96065517a98c14128bb16c3'),
    'resnest/faster-rcnn_s50_fpn_syncbn-backbone+head_ms-range-1x_coco.py': (526, 'a5f86069c7c25cab43999f34666c1a61754a2d14'),
    'resnest/mask-rcnn_s101_fpn_syncbn-backbone+head_ms-1x_coco.py': (1013, 'ca26b88740bb9dab88c9b0bb82cf4ea1d9563071'),
    'resnest/mask-rcnn_s50_fpn_syncbn-backbone+head_ms-1x_coco.py': (554, '77a76c958452cf09d2b512e81fb707297abd2131'),
    'mask_rcnn/mask-rcnn_x101-32x4d_fpn_1x_coco.py': (666, 'ca2ebd3acb910a74ab0f95af141ed6154f4abca3'),
    'fcos/fcos_r50-caffe_fpn_gn-head_4xb4-1x_coco.py': (369, 'bc96b2b162f241b07ec6fe691dafc2af23c6bfab'),
}


def build(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_mmdet_config_builds_mmdets_state_dict(path):
    assert state_dict_signature(build(MMDET_CONFIGS / path)) == MMDET_SIGNATURES[path]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_detlab_config_is_mmdets_and_builds_the_same(path):
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()
    assert state_dict_signature(build(REPO_ROOT / 'configs' / path)) == MMDET_SIGNATURES[path]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_pretrained_backbone_names_resolve_offline_with_a_clear_error(path):
    from detlab.utils.checkpoint import resolve_checkpoint
    checkpoint = Config.fromfile(str(MMDET_CONFIGS / path)).model.backbone.init_cfg.checkpoint
    assert checkpoint.startswith(('open-mmlab://', 'torchvision://'))
    try:
        local = resolve_checkpoint(checkpoint)
    except RuntimeError as error:
        message = str(error)
        assert 'https://download' in message
        assert 'hub' in message and checkpoint in message
    else:
        assert local.endswith('.pth')
