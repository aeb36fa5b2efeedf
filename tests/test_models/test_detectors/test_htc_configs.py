"""MMDetection 3.3's HTC configs (configs/htc and the HTC configs of hrnet and res2net):
detlab's copies are MMDetection's files, build its state_dict keys and shapes, and their
pipelines build."""
import pytest
import torch
from mmengine.config import Config

from detlab.registry import MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT, state_dict_signature

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# (entries, SHA-1 of the sorted (key, shape) list) of the models MMDetection 3.3 builds
# from these files, measured by tools/dev/measure_htc.py --configs. On the same weights and
# coco128 photo 9 at 1066x800 (tools/dev/measure_htc.py), htc-without-semantic_r50 and htc_r50
# gave MMDetection's losses (loss_semantic_seg and s0-s2 loss_cls, acc, loss_bbox, loss_mask)
# to the last bit, its 100 boxes, scores and labels and its 100 pasted masks pixel for pixel.
MMDET_SIGNATURES = {
    'hrnet/htc_hrnetv2p-w18_20e_coco.py': (1934, '06a40cd9b147d0aee11ee1df7b49e3f6426dcd96'),
    'hrnet/htc_hrnetv2p-w32_20e_coco.py': (1934, '75e90ca834ff04bd3fcd7185a36592f3c005bc15'),
    'hrnet/htc_hrnetv2p-w40_20e_coco.py': (1934, '4bb284d6d0cfcc0894abda7f7a02b88feb1df3d2'),
    'hrnet/htc_hrnetv2p-w40_28e_coco.py': (1934, '4bb284d6d0cfcc0894abda7f7a02b88feb1df3d2'),
    'hrnet/htc_x101-64x4d_fpn_16xb1-28e_coco.py': (732, 'ff92400815721f6169c0d50bfb6f3eef86457d9d'),  # noqa: E501
    'htc/htc-without-semantic_r50_fpn_1x_coco.py': (404, '8bf919162f5d20e57048af5535ac5aa3dbe14816'),  # noqa: E501
    'htc/htc_r101_fpn_20e_coco.py': (732, 'd4649f5486045762970dbe3338412cbadc0f3623'),
    'htc/htc_r50_fpn_1x_coco.py': (426, '9e3313cc20d90b0b160a24ecc886f82b86bb7f88'),
    'htc/htc_r50_fpn_20e_coco.py': (426, '9e3313cc20d90b0b160a24ecc886f82b86bb7f88'),
    'htc/htc_x101-32x4d_fpn_16xb1-20e_coco.py': (732, '0875add939d056ee3c8953bbb3acfdd0b211e7b8'),
    'htc/htc_x101-64x4d-dconv-c3-c5_fpn_ms-400-1400-16xb1-20e_coco.py': (792, 'cdaeff47fef97a607f894a84a95e84fd4b2b4ccc'),  # noqa: E501
    'htc/htc_x101-64x4d_fpn_16xb1-20e_coco.py': (732, 'ff92400815721f6169c0d50bfb6f3eef86457d9d'),
    'res2net/htc_res2net-101_fpn_20e_coco.py': (1140, '6ec4e697be2c591598458a865c0685bb85c65235'),
}


def test_every_htc_config_of_mmdetection_is_here():
    found = {path.relative_to(MMDET_CONFIGS).as_posix()
             for folder in ('htc', 'hrnet', 'res2net')
             for path in (MMDET_CONFIGS / folder).glob('htc*.py')}
    assert found == set(MMDET_SIGNATURES)


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the pretrained weights would need a download
    return cfg


#: Signatures by the model config's repr: configs that merge to the same model build once.
_SIGNATURES = {}


def signature_of(model_cfg) -> tuple:
    """The state_dict signature of a config's model, built on the 'meta' device (keys
    and shapes, no memory)."""
    key = repr(model_cfg.to_dict())
    if key not in _SIGNATURES:
        with torch.device('meta'):
            _SIGNATURES[key] = state_dict_signature(MODELS.build(model_cfg))
    return _SIGNATURES[key]


@pytest.mark.parametrize('path', sorted(MMDET_SIGNATURES))
def test_detlab_config_is_mmdets_and_builds_mmdets_state_dict(path):
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()
    cfg = load(REPO_ROOT / 'configs' / path)
    assert signature_of(cfg.model) == MMDET_SIGNATURES[path]
    with_semantic = 'without-semantic' not in path
    assert ('semantic_head' in cfg.model.roi_head) == with_semantic
    train = cfg.train_dataloader.dataset
    assert ('seg' in train.data_prefix) == with_semantic
    for pipeline in (train.pipeline, cfg.test_dataloader.dataset.pipeline):
        assert [type(TRANSFORMS.build(step)).__name__ for step in pipeline] == \
            [step['type'] for step in pipeline]


def test_htc_r50_names_mmdetections_checkpoint():
    from detlab.apis import model_zoo_weights
    # From MMDetection 3.3's configs/htc/metafile.yml (box AP 42.3, mask AP 37.4).
    assert model_zoo_weights('htc_r50_fpn_1x_coco').endswith(
        'htc_r50_fpn_1x_coco_20200317-7332cf16.pth')
