"""MMDetection 3.3's RTMDet and RTMDet-Ins configs, unchanged, load and build in detlab with
MMDetection's state_dict keys and shapes; detlab's own copies under configs/rtmdet/ build the
same models."""
import hashlib

import pytest
from mmengine.config import Config

from detlab.registry import HOOKS, MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs/rtmdet'
# What MMDetection 3.3 builds from each config (tools/dev/measure_rtmdet.py --state-dicts):
# state_dict entries, their total elements (shared head convs counted at every level), and
# the first 16 hex digits of the SHA-256 of 'key:shape;' over the entries in order.
MMDET_STATE_DICTS = {
    'rtmdet_tiny_8xb32-300e_coco.py': (476, 5577604, '216423fe643b6dde'),
    'rtmdet_s_8xb32-300e_coco.py': (512, 10091550, '14a96428cfdfd8d2'),
    'rtmdet_m_8xb32-300e_coco.py': (692, 27412084, '5375242888792ad5'),
    'rtmdet_l_8xb32-300e_coco.py': (872, 57114282, 'c5c8eacbcee5f71a'),
    'rtmdet_x_8xb32-300e_coco.py': (1052, 102346944, '04dc07881bcbec4c'),
    'rtmdet_x_p6_4xb8-300e_coco.py': (1376, 163761801, '37d65a87b1abaa55'),
    # tools/dev/measure_rtmdet_ins.py --state-dicts (reg_convs repeat the cls_convs' keys)
    'rtmdet-ins_tiny_8xb32-300e_coco.py': (546, 6488593, '47c3c0f1943d6b53'),
    'rtmdet-ins_s_8xb32-300e_coco.py': (582, 11686955, 'ecaa3e6b220e335e'),
    'rtmdet-ins_m_8xb32-300e_coco.py': (762, 30947713, '84dc050cc287f778'),
    'rtmdet-ins_l_8xb32-300e_coco.py': (942, 63351991, '13b8f5957edfd2a0'),
    'rtmdet-ins_x_8xb16-300e_coco.py': (1122, 112048589, 'f505ad8a3b3ddf6a'),
}


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    return cfg


def summary(cfg):
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    state_dict = MODELS.build(cfg.model).state_dict()
    keys = ''.join(f'{k}:{tuple(v.shape)};' for k, v in state_dict.items())
    return (len(state_dict), sum(v.numel() for v in state_dict.values()),
            hashlib.sha256(keys.encode()).hexdigest()[:16])


@pytest.mark.parametrize('file_name', sorted(MMDET_STATE_DICTS))
def test_config_builds_mmdetections_state_dict(file_name):
    assert summary(load(MMDET_CONFIGS / file_name)) == MMDET_STATE_DICTS[file_name]
    assert summary(load(REPO_ROOT / 'configs/rtmdet' / file_name)) == \
        MMDET_STATE_DICTS[file_name]


@pytest.mark.parametrize('root', [MMDET_CONFIGS, REPO_ROOT / 'configs/rtmdet'])
@pytest.mark.parametrize('file_name', ['rtmdet_tiny_8xb32-300e_coco.py',
                                       'rtmdet_x_p6_4xb8-300e_coco.py'])
def test_pipelines_hooks_and_tta_build(root, file_name):
    cfg = load(root / file_name)
    assert cfg.model.type == 'RTMDet' and cfg.model.bbox_head.type == 'RTMDetSepBNHead'
    assert cfg.tta_model.type == 'DetTTAModel'
    hook_types = [hook['type'] for hook in cfg.custom_hooks]
    assert hook_types == ['EMAHook', 'PipelineSwitchHook']
    switch = HOOKS.build(cfg.custom_hooks[1])
    assert switch.switch_epoch == 280
    assert cfg.custom_hooks[0].ema_type == 'ExpMomentumEMA'
    assert MODELS.get('ExpMomentumEMA') is not None
    for pipeline in (cfg.train_dataloader.dataset.pipeline, switch.switch_pipeline,
                     cfg.test_dataloader.dataset.pipeline, cfg.tta_pipeline):
        for transform in pipeline:
            assert TRANSFORMS.build(transform) is not None, transform['type']
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.paramwise_cfg == dict(norm_decay_mult=0, bias_decay_mult=0,
                                                   bypass_duplicate=True)


def test_detlab_configs_hold_mmdetections_values():
    """Comments aside, detlab's RTMDet configs are MMDetection's: the merged configs agree."""
    for file_name in list(MMDET_STATE_DICTS) + ['rtmdet_tta.py']:
        mmdet_cfg = Config.fromfile(str(MMDET_CONFIGS / file_name)).to_dict()
        detlab_cfg = Config.fromfile(str(REPO_ROOT / 'configs/rtmdet' / file_name)).to_dict()
        for cfg in (mmdet_cfg, detlab_cfg):
            # detlab's runtime: its scope, DetRunner, TensorBoard, and the hooks DetRunner
            # builds for CheckpointHook/LoggerHook named as such.
            for key in ('default_scope', 'vis_backends', 'runner_type'):
                cfg.pop(key, None)
            cfg.get('visualizer', {}).pop('vis_backends', None)
            for hook in cfg.get('default_hooks', {}).values():
                if hook.get('type') in ('DetCheckpointHook', 'DetLoggerHook'):
                    hook['type'] = hook['type'][len('Det'):]
        assert detlab_cfg == mmdet_cfg, file_name


@pytest.mark.parametrize('root', [MMDET_CONFIGS, REPO_ROOT / 'configs/rtmdet'])
def test_instance_segmentation_pipelines_and_hooks_build(root):
    cfg = load(root / 'rtmdet-ins_tiny_8xb32-300e_coco.py')
    assert cfg.model.bbox_head.type == 'RTMDetInsSepBNHead'
    assert cfg.model.test_cfg.mask_thr_binary == 0.5
    assert cfg.val_evaluator.metric == ['bbox', 'segm']
    switch = HOOKS.build(cfg.custom_hooks[1])
    for pipeline in (cfg.train_dataloader.dataset.pipeline, switch.switch_pipeline,
                     cfg.test_dataloader.dataset.pipeline):
        for transform in pipeline:
            assert TRANSFORMS.build(transform) is not None, transform['type']
    assert cfg.train_dataloader.dataset.pipeline[1] == dict(
        type='LoadAnnotations', with_bbox=True, with_mask=True, poly2mask=False)
