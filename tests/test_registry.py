"""detlab's registries find their modules by themselves and say what is wrong."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from detlab.registry import MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope

from helpers import REPO_ROOT


@pytest.mark.slow
def test_every_registry_imports_its_own_modules():
    """No manual import: each registry's ``locations`` fill it on first use."""
    code = (
        'from detlab.registry import (DATASETS, DATA_SAMPLERS, HOOKS, METRICS, MODELS, '
        'TASK_UTILS, TRANSFORMS, VISUALIZERS, WEIGHT_INITIALIZERS)\n'
        "found = [MODELS.get('RetinaNet'), MODELS.get('DetDataPreprocessor'), "
        "TASK_UTILS.get('MaxIoUAssigner'), TRANSFORMS.get('PackDetInputs'), "
        "DATASETS.get('ShapesDataset'), DATA_SAMPLERS.get('AspectRatioBatchSampler'), "
        "METRICS.get('CocoMetric'), HOOKS.get('DetVisualizationHook'), "
        "VISUALIZERS.get('DetLocalVisualizer'), WEIGHT_INITIALIZERS.get('Pretrained')]\n"
        "print(' '.join(cls.__module__.split('.')[0] for cls in found))\n")
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ['detlab'] * 10


def test_parents_supply_mmengine_and_mmcv_parts():
    assert MODELS.get('RetinaNet').__module__.startswith('detlab.')
    assert TRANSFORMS.get('RandomResize').__module__.startswith('mmcv.')  # inherited


def test_unknown_transform_suggests_close_names():
    with pytest.raises(KeyError, match=r"detlab::transform registry.*RandomFlip"):
        TRANSFORMS.build(dict(type='RandomFlipp'))


@pytest.mark.parametrize('scope, expected', [('mmdet', 'detlab'), ('detlab', 'detlab'),
                                             (None, 'detlab')])
def test_mmdet_scope_is_served_by_detlab(scope, expected):
    cfg = Config(dict(default_scope=scope))
    adopt_default_scope(cfg)
    assert cfg.default_scope == expected


def test_config_without_default_scope_gets_detlab_scope():
    cfg = Config(dict(model=dict(type='RetinaNet')))
    adopt_default_scope(cfg)
    assert cfg.default_scope == 'detlab'


def test_get_and_in_keep_mmengine_contract_for_unknown_names():
    assert MODELS.get('NoSuchDetector') is None
    assert 'NoSuchDetector' not in MODELS
    assert 'RetinaNet' in MODELS and 'RandomResize' in TRANSFORMS


def test_unknown_model_built_by_det_runner_suggests_close_names(tmp_path):
    """The Runner builds through mmengine's root registries in detlab's scope;
    DetRunner turns mmengine's message into one with the closest names,
    while the root registry itself stays mmengine's."""
    from mmengine.registry import DefaultScope
    from mmengine.registry import MODELS as MMENGINE_MODELS

    from detlab.engine.runner import DetRunner
    with pytest.raises(KeyError, match=r"'RetinaNett' is not in the detlab::model.*RetinaNet"):
        DetRunner(model=dict(type='RetinaNett'), work_dir=str(tmp_path),
                  default_scope='detlab', experiment_name=f'near-miss-{tmp_path.name}')
    with DefaultScope.overwrite_default_scope('detlab'):
        with pytest.raises(KeyError, match='RetinaNett is not in the detlab::model') as error:
            MMENGINE_MODELS.build(dict(type='RetinaNett'))
        assert 'Closest known names' not in str(error.value)
        assert MMENGINE_MODELS.get('RetinaNett') is None


def test_nested_unknown_type_names_the_inner_type():
    with pytest.raises(KeyError, match=r"'RetinaHeadd'.*Closest known names: RetinaHead"):
        MODELS.build(dict(type='RetinaNet', backbone=dict(type='ResNet', depth=18),
                          neck=None, bbox_head=dict(type='RetinaHeadd')))
