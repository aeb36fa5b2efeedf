"""detlab's registries find their modules by themselves and say what is wrong."""
import subprocess
import sys

import pytest
from mmengine.config import Config

from detlab.registry import MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope

from conftest import REPO_ROOT


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
