"""Every public name MMDetection exports from a package is exported from the same detlab package,
for the parts detlab has (code written against ``mmdet.x import Y`` works with ``detlab.x``)."""
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import detlab

NAMES = json.loads((Path(__file__).parent / 'data' / 'mmdet_3.3_public_names.json').read_text())
PACKAGES = sorted(k for k in NAMES if not k.startswith('_'))
# Same name, different thing: MMDetection's roi_heads.ResLayer is the ResNet shared RoI head,
# which detlab keeps in roi_heads.shared_heads (registered as 'ResLayer', not re-exported);
# detlab's exported ResLayer is the backbone stage (models.layers).
NOT_THE_SAME = {'mmdet.models.roi_heads': {'ResLayer'}}


def _detlab_definitions() -> dict:
    """Name -> object for every class and function defined in a detlab module."""
    found = {}
    for info in pkgutil.walk_packages(detlab.__path__, 'detlab.'):
        if '.shapes.__main__' in info.name:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and \
                    getattr(obj, '__module__', '') == info.name:
                found.setdefault(name, obj)
    return found


DEFINED = _detlab_definitions()


def test_the_name_list_is_mmdetections():
    assert 'CocoMetric' in NAMES['mmdet.evaluation'] and 'RetinaNet' in NAMES['mmdet.models']


@pytest.mark.parametrize('package', PACKAGES)
def test_package_exports_what_mmdetection_exports(package):
    wanted = [n for n in NAMES[package]
              if n in DEFINED and n not in NOT_THE_SAME.get(package, ())]
    try:
        module = importlib.import_module(package.replace('mmdet', 'detlab', 1))
    except ModuleNotFoundError:
        assert not wanted, f'{package} names {wanted} exist in detlab but the package does not'
        return
    missing = [n for n in wanted if not hasattr(module, n)]
    assert not missing, f"{module.__name__} lacks {missing}, which MMDetection's {package} exports"
