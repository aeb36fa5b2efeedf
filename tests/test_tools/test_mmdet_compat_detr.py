"""MMDetection 3.3's DETR, Deformable DETR, Conditional DETR, DAB-DETR and DINO configs,
unchanged, build in detlab with MMDetection's state_dict keys and shapes; their training
recipe (multi-scale crop pipeline, AdamW with a 0.1 backbone lr, gradient clipping) runs
as written."""
import hashlib
import random

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope

from helpers import REPO_ROOT, require_coco128
from detlab.registry import MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# What MMDetection 3.3 builds from each file (mmdet's MODELS.build, backbone
# init_cfg=None): state_dict entries, and the first 16 hex digits of the sha1
# of its sorted "key:shape" lines.
MMDET_STATE_DICTS = {
    'detr/detr_r101_8xb2-500e_coco.py': ('DETR', 817, '06e963b19ae377e0'),
    'detr/detr_r18_8xb2-500e_coco.py': ('DETR', 313, 'ed6cd16698f79084'),
    'detr/detr_r50_8xb2-150e_coco.py': ('DETR', 511, '3e2a3a4ae0703c0e'),
    'detr/detr_r50_8xb2-500e_coco.py': ('DETR', 511, '3e2a3a4ae0703c0e'),
    'deformable_detr/deformable-detr-refine-twostage_r50_16xb2-50e_coco.py':
    ('DeformableDETR', 623, 'a4ccfa52fb8b24da'),
    'deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py':
    ('DeformableDETR', 610, '98054b24d1636826'),
    'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py':
    ('DeformableDETR', 610, '98054b24d1636826'),
    'dino/dino-4scale_r50_8xb2-12e_coco.py': ('DINO', 627, '0a45af58809c493d'),
    'dino/dino-4scale_r50_8xb2-24e_coco.py': ('DINO', 627, '0a45af58809c493d'),
    'dino/dino-4scale_r50_8xb2-36e_coco.py': ('DINO', 627, '0a45af58809c493d'),
    'dino/dino-4scale_r50_improved_8xb2-12e_coco.py': ('DINO', 627, '0a45af58809c493d'),
    'conditional_detr/conditional-detr_r50_8xb2-50e_coco.py':
    ('ConditionalDETR', 617, '92c0bdf144e85dd3'),
    'dab_detr/dab-detr_r50_8xb2-50e_coco.py': ('DABDETR', 637, '04cd23811ba47559'),
}


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    return cfg


def state_dict_digest(model) -> str:
    lines = sorted(f'{k}:{tuple(v.shape)}' for k, v in model.state_dict().items())
    return hashlib.sha1('\n'.join(lines).encode()).hexdigest()[:16]


@pytest.mark.parametrize('path', sorted(MMDET_STATE_DICTS))
def test_mmdet_config_builds_mmdets_state_dict(path):
    detector, num_keys, digest = MMDET_STATE_DICTS[path]
    model = MODELS.build(load(MMDET_CONFIGS / path).model)
    assert type(model).__name__ == detector
    assert len(model.state_dict()) == num_keys
    assert state_dict_digest(model) == digest
    # detlab's own copy of the config is MMDetection's file.
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()


def test_refinement_unshares_the_branches_and_two_stage_adds_one():
    plain = MODELS.build(load(MMDET_CONFIGS / 'deformable_detr/'
                              'deformable-detr_r50_16xb2-50e_coco.py').model)
    assert plain.bbox_head.cls_branches[0] is plain.bbox_head.cls_branches[5]
    two_stage = MODELS.build(load(MMDET_CONFIGS / 'deformable_detr/deformable-detr-refine-'
                                  'twostage_r50_16xb2-50e_coco.py').model)
    assert len(two_stage.bbox_head.reg_branches) == 7
    assert two_stage.bbox_head.reg_branches[0] is not two_stage.bbox_head.reg_branches[1]
    with pytest.raises(ValueError, match='share_pred_layer'):
        cfg = load(MMDET_CONFIGS / 'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py')
        cfg.model.bbox_head.share_pred_layer = True
        MODELS.build(cfg.model)


def test_the_optimizer_recipe_scales_the_backbone_lr_and_clips():
    cfg = load(MMDET_CONFIGS / 'dino/dino-4scale_r50_8xb2-12e_coco.py')
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert type(wrapper.optimizer).__name__ == 'AdamW'
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    lrs = {('backbone' if id(p) in backbone_ids else 'rest'): group['lr']
           for group in wrapper.optimizer.param_groups for p in group['params']}
    assert lrs == {'backbone': pytest.approx(1e-5), 'rest': pytest.approx(1e-4)}
    assert wrapper.clip_grad_kwargs == dict(max_norm=0.1, norm_type=2)


def test_the_multi_scale_crop_pipeline_runs_on_a_photo():
    coco = require_coco128()
    init_default_scope('detlab')
    cfg = load(MMDET_CONFIGS / 'dino/dino-4scale_r50_8xb2-12e_coco.py')
    pipeline = Compose(cfg.train_pipeline)
    assert type(pipeline.transforms[3]).__name__ == 'RandomChoice'
    assert TRANSFORMS.get('RandomChoiceResize') is not None
    np.random.seed(0)
    random.seed(0)
    sizes = set()
    for _ in range(6):
        result = pipeline(dict(img_path=str(coco / 'images/train2017/000000000009.jpg'),
                               img_id=9, instances=[dict(bbox=[10., 20., 300., 400.],
                                                         bbox_label=3, ignore_flag=0)]))
        h, w = result['inputs'].shape[-2:]
        assert 480 <= min(h, w) <= 800 and max(h, w) <= 1333
        boxes = result['data_samples'].gt_instances.bboxes
        assert (boxes[:, 2] <= w + 1e-3).all() and (boxes[:, 3] <= h + 1e-3).all()
        sizes.add((h, w))
    assert len(sizes) > 1  # the scales are drawn, not fixed
