"""MMDetection 3.3's YOLOX configs, unchanged, load and build in detlab with MMDetection's
state_dict keys and shapes; detlab's own copies under configs/yolox/ build the same models, and
their pipelines, hooks, schedulers and test-time augmentation resolve."""
import hashlib

import pytest
from mmengine.config import Config

from detlab.registry import HOOKS, MODELS, PARAM_SCHEDULERS, TRANSFORMS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs/yolox'
# What MMDetection 3.3 builds from each config (tools/dev/measure_yolox.py --state-dicts):
# state_dict entries, their total elements, and the first 16 hex digits of the SHA-256 of
# 'key:shape;' over the entries in order.
MMDET_STATE_DICTS = {
    'yolox_l_8xb8-300e_coco.py': (750, 54278265, 'f4d0d2fe89f5f7f5'),
    'yolox_m_8xb8-300e_coco.py': (606, 25369889, 'aa38a745912a163f'),
    'yolox_nano_8xb8-300e_coco.py': (642, 927655, '7783ccf55be61e42'),
    'yolox_s_8xb8-300e_coco.py': (462, 8991433, '57cc75c9e46d44f6'),
    'yolox_tiny_8xb8-300e_coco.py': (462, 5073257, '53aeb7e427038a9d'),
    'yolox_x_8xb8-300e_coco.py': (894, 99172561, 'f2236abceecd800b'),
}


def load(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    return cfg


def summary(cfg):
    state_dict = MODELS.build(cfg.model).state_dict()
    keys = ''.join(f'{k}:{tuple(v.shape)};' for k, v in state_dict.items())
    return (len(state_dict), sum(v.numel() for v in state_dict.values()),
            hashlib.sha256(keys.encode()).hexdigest()[:16])


@pytest.mark.parametrize('file_name', sorted(MMDET_STATE_DICTS))
def test_config_builds_mmdetections_state_dict(file_name):
    assert summary(load(MMDET_CONFIGS / file_name)) == MMDET_STATE_DICTS[file_name]
    assert summary(load(REPO_ROOT / 'configs/yolox' / file_name)) == MMDET_STATE_DICTS[file_name]


@pytest.mark.parametrize('root', [MMDET_CONFIGS, REPO_ROOT / 'configs/yolox'])
def test_pipelines_hooks_schedulers_and_tta_build(root):
    cfg = load(root / 'yolox_s_8xb8-300e_coco.py')
    assert cfg.model.type == 'YOLOX' and cfg.model.bbox_head.type == 'YOLOXHead'
    assert cfg.model.train_cfg.assigner.type == 'SimOTAAssigner'
    assert cfg.tta_model.type == 'DetTTAModel'
    # MMDetection names its scheduler 'mmdet.QuadraticWarmupLR'; adopting the config drops
    # the scope so that detlab's registry answers.
    assert [s['type'] for s in cfg.param_scheduler] == ['QuadraticWarmupLR',
                                                        'CosineAnnealingLR', 'ConstantLR']
    assert PARAM_SCHEDULERS.get('QuadraticWarmupLR') is not None
    # The runner takes each hook's priority out of its config before building it.
    hooks = [HOOKS.build({k: v for k, v in hook.items() if k != 'priority'})
             for hook in cfg.custom_hooks if hook['type'] != 'EMAHook']
    assert [type(hook).__name__ for hook in hooks] == ['YOLOXModeSwitchHook', 'SyncNormHook']
    assert hooks[0].num_last_epochs == 15
    assert MODELS.get(cfg.custom_hooks[2].ema_type) is not None
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    assert type(preprocessor.batch_augments[0]).__name__ == 'BatchSyncRandomResize'
    assert cfg.train_dataloader.dataset.type == 'MultiImageMixDataset'
    for pipeline in (cfg.train_dataloader.dataset.pipeline,
                     cfg.train_dataloader.dataset.dataset.pipeline,
                     cfg.test_dataloader.dataset.pipeline, cfg.tta_pipeline):
        for transform in pipeline:
            assert TRANSFORMS.build(transform) is not None, transform['type']


def test_detlab_configs_are_mmdetections():
    for path in sorted(MMDET_CONFIGS.glob('*.py')):
        assert (REPO_ROOT / 'configs/yolox' / path.name).read_bytes() == path.read_bytes()
