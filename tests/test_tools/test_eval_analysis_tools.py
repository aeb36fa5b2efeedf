"""tools/analysis_tools/{eval_metric,confusion_matrix}.py on a result file of tools/test.py --out,
run as a user runs them (a fresh process, no default scope set beforehand)."""
import json
import pickle

import numpy as np
import pytest
import torch

from helpers import assert_ok, run_tool

pytestmark = pytest.mark.slow

CLASSES = ('cat', 'dog')
# img_id -> gt boxes (x1, y1, x2, y2, label), in a 100x100 image.
GT = {1: [(10, 10, 50, 50, 0), (60, 60, 90, 90, 1)], 2: [(0, 0, 30, 30, 1)]}


@pytest.fixture
def setup(tmp_path):
    anns = [dict(id=i + 1, image_id=img, category_id=label + 1, iscrowd=0, area=(x2 - x1) *
                 (y2 - y1), bbox=[x1, y1, x2 - x1, y2 - y1])
            for i, (img, (x1, y1, x2, y2, label)) in enumerate(
                (img, box) for img, boxes in GT.items() for box in boxes)]
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(json.dumps(dict(
        images=[dict(id=img, width=100, height=100, file_name=f'{img}.jpg') for img in GT],
        annotations=anns, categories=[dict(id=i + 1, name=n) for i, n in enumerate(CLASSES)])))
    config = tmp_path / 'config.py'
    config.write_text(
        "default_scope = 'detlab'\n"
        f"test_dataloader = dict(dataset=dict(type='CocoDataset', data_root='{tmp_path}', "
        "ann_file='ann.json', data_prefix=dict(img=''), test_mode=True, "
        f"metainfo=dict(classes={CLASSES!r}), pipeline=[]))\n"
        f"test_evaluator = dict(type='CocoMetric', ann_file='{ann_file}')\n")
    # Predictions as MMDetection's DumpDetResults pickles them: image 1 perfect
    # (the dog box also predicted as cat, lower score), image 2's dog missed,
    # one false cat on the background.
    records = []
    for img, preds in {1: [(10, 10, 50, 50, 0.9, 0), (60, 60, 90, 90, 0.8, 1),
                           (60, 60, 90, 90, 0.4, 0)],
                       2: [(60, 60, 80, 80, 0.7, 0)]}.items():
        records.append(dict(img_id=img, img_path=f'{img}.jpg', ori_shape=(100, 100),
                            pred_instances=dict(
                                bboxes=torch.tensor([p[:4] for p in preds], dtype=torch.float32),
                                scores=torch.tensor([p[4] for p in preds]),
                                labels=torch.tensor([p[5] for p in preds]))))
    results = tmp_path / 'results.pkl'
    results.write_bytes(pickle.dumps(records))
    return config, results, tmp_path


def run_analysis_tool(name, *args):
    return run_tool(f'tools/analysis_tools/{name}', *args, timeout=300)


def test_eval_metric_tool(setup):
    config, results, tmp_path = setup
    out = assert_ok(run_analysis_tool('eval_metric.py', config, results, '--out-dir',
                                      tmp_path / 'pr'))
    assert "'coco/bbox_mAP'" in out
    # cat: 1 gt, found first then two false positives; dog: found 1 of 2 gts.
    rows = {line.split('|')[1].strip(): [c.strip() for c in line.split('|')[2:-1]]
            for line in out.splitlines() if line.startswith('| cat') or line.startswith('| dog')}
    assert rows['cat'] == ['1', '0.900', '1.000', '1.000', '1.000']
    assert rows['dog'] == ['2', '0.800', '1.000', '0.500', '0.667']
    pngs = sorted(p.name for p in (tmp_path / 'pr').iterdir())
    assert pngs == ['pr_curve_000_cat.png', 'pr_curve_001_dog.png']


def test_confusion_matrix_tool(setup):
    config, results, tmp_path = setup
    assert_ok(run_analysis_tool('confusion_matrix.py', config, results, tmp_path / 'cm',
                                '--score-thr', '0.3'))
    saved = json.loads((tmp_path / 'cm' / 'confusion_matrix.json').read_text())
    assert saved['labels'] == ['cat', 'dog', 'background']
    np.testing.assert_array_equal(saved['counts'], [[1, 0, 0],   # cat found
                                                    [1, 1, 1],   # dog as cat too; one missed
                                                    [1, 0, 0]])  # false cat
    assert (tmp_path / 'cm' / 'confusion_matrix.png').read_bytes()[:4] == b'\x89PNG'


def test_tools_name_foreign_images(setup):
    config, results, tmp_path = setup
    records = pickle.loads(results.read_bytes())
    records[0]['img_id'] = 77
    results.write_bytes(pickle.dumps(records))
    result = run_analysis_tool('confusion_matrix.py', config, results, tmp_path / 'cm')
    assert result.returncode != 0 and 'KeyError' in result.stderr and '[77]' in result.stderr
