"""tools/test.py --tta on the quickstart model, whose config has no TTA settings: MMDetection's
defaults (a flipped and an unflipped view, DetTTAModel) are used and the metrics come out."""
import json

import pytest

from helpers import assert_ok, run_tool

pytestmark = pytest.mark.slow


def test_tools_test_tta_with_default_tta_settings(quickstart_model, tmp_path):
    out_file = tmp_path / 'tta_preds.json'
    output = assert_ok(run_tool(
        'tools/test.py', quickstart_model['config'], quickstart_model['checkpoint'], '--tta',
        '--work-dir', tmp_path / 'work', '--out', out_file, '--cfg-options',
        *quickstart_model['options'], 'test_dataloader.batch_size=1'))
    assert 'no tta_model' in output and 'no tta_pipeline' in output
    assert 'bbox_mAP' in output
    records = json.loads(out_file.read_text())
    assert len(records) == len(quickstart_model['val_images'])
    assert all(len(r['pred_instances']['scores']) <= 100 for r in records)
