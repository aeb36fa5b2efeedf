"""Shared test helpers: the repo root, the coco128 folder, detlab's registries."""
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
COCO128 = REPO_ROOT.parent / 'shared' / 'data' / 'coco128'


@pytest.fixture(scope='session', autouse=True)
def _detlab_scope():
    from detlab.utils import register_all_modules
    register_all_modules()


@pytest.fixture
def coco128() -> Path:
    if not (COCO128 / 'annotations' / 'instances_train2017.json').is_file():
        pytest.skip(f'coco128 not found at {COCO128} (it lives beside the repo, in ../shared)')
    return COCO128
