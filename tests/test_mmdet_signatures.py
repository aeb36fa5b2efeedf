"""What detlab shares with MMDetection takes MMDetection's arguments: every public attribute,
parameter name and parameter order of MMDetection's classes and functions, for the packages in
tests/data/mmdet_3.3_signatures.json (written by tools/dev/compare_mmdet_api.py), so code
written against ``mmdet.x`` works with ``detlab.x``."""
import json
from pathlib import Path

import pytest
from helpers import load_tool

REFERENCE = json.loads(
    (Path(__file__).parent / 'data' / 'mmdet_3.3_signatures.json').read_text())
PACKAGES = sorted(k for k in REFERENCE if not k.startswith('_'))
API = load_tool('tools/dev/compare_mmdet_api.py')

# Differences kept, each with its reason.
KNOWN_DIFFERENCES = {
    # Repeated-gt perturbation for DDQ/DINO-style assignment; detlab has neither model.
    "detlab.models.task_modules.MaxIoUAssigner.__init__(): no parameter 'perm_repeat_gt_cfg'",
}


def test_the_reference_is_mmdetections():
    assert 'MaxIoUAssigner' in REFERENCE['mmdet.models.task_modules']
    assert REFERENCE['mmdet.models.necks']['FPN']['methods']['__init__'][:3] == [
        'in_channels', 'out_channels', 'num_outs']


@pytest.mark.parametrize('package', PACKAGES)
def test_shared_names_take_mmdetections_arguments(package):
    found = set(API.differences({package: REFERENCE[package]}))
    assert not found - KNOWN_DIFFERENCES, '\n'.join(sorted(found - KNOWN_DIFFERENCES))
