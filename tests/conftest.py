"""Fixtures shared by detlab's tests; plain helpers live in ``helpers.py``."""
from pathlib import Path

import pytest

from helpers import (QUICKSTART, QUICKSTART_TEST_SCORE_THR, REPO_ROOT, assert_ok, require_coco128,
                     run_tool, tiny_run_options)


@pytest.fixture(scope='session', autouse=True)
def _detlab_scope():
    from detlab.utils import register_all_modules
    register_all_modules()


@pytest.fixture
def coco128() -> Path:
    return require_coco128()


@pytest.fixture(scope='session')
def quickstart_model(tmp_path_factory) -> dict:
    """The quickstart RetinaNet trained for 4 iterations on 16 generated images.

    Returns:
        dict: ``config`` (a config file inheriting the quickstart with a low
        test score threshold), ``checkpoint``, ``options`` (the --cfg-options
        of the tiny run), ``val_dir`` (its validation folder), ``val_images``
        (the 8 image files in it) and ``root``.
    """
    root = tmp_path_factory.mktemp('quickstart')
    data_root = root / 'shapes'
    config = root / 'quickstart_tiny.py'
    config.write_text(f"_base_ = '{REPO_ROOT / QUICKSTART}'\n"
                      f'model = dict(test_cfg=dict(score_thr={QUICKSTART_TEST_SCORE_THR}))\n')
    options = tiny_run_options(data_root, max_iters=4)
    assert_ok(run_tool('tools/train.py', config, '--work-dir', root / 'work', '--cfg-options',
                       *options))
    val_dir = data_root / 'val'
    val_images = sorted(path for path in val_dir.iterdir() if path.suffix in ('.jpg', '.png'))
    return dict(config=config, checkpoint=root / 'work' / 'iter_4.pth', options=options,
                val_dir=val_dir, val_images=val_images, root=root)


@pytest.fixture(scope='session')
def quickstart_test_predictions(quickstart_model) -> dict:
    """``tools/test.py --out`` predictions of :func:`quickstart_model` on its
    validation images (batch 1), by image file name."""
    import json
    out_file = quickstart_model['root'] / 'test_preds.json'
    assert_ok(run_tool('tools/test.py', quickstart_model['config'], quickstart_model['checkpoint'],
                       '--work-dir', quickstart_model['root'] / 'test', '--out', out_file,
                       '--cfg-options', *quickstart_model['options'],
                       'test_dataloader.batch_size=1'))
    return {Path(record['img_path']).name: record['pred_instances']
            for record in json.loads(out_file.read_text())}
