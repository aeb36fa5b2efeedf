"""tools/analysis_tools/browse_dataset.py draws the training samples of a config."""
import pytest
import importlib.util
import json
import subprocess
import sys

import cv2
import numpy as np

from helpers import REPO_ROOT

TOOL = REPO_ROOT / 'tools/analysis_tools/browse_dataset.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('browse_dataset', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_coco(root):
    """Two 60x80 black images, each with a white square and its annotation (the box, and a
    polygon inside it)."""
    (root / 'images').mkdir()
    images, annotations = [], []
    for i in range(2):
        img = np.zeros((60, 80, 3), np.uint8)
        img[10:30, 20 + 10 * i:40 + 10 * i] = 255
        cv2.imwrite(str(root / 'images' / f'{i}.jpg'), img)
        images.append(dict(id=i, file_name=f'{i}.jpg', height=60, width=80))
        x = 20 + 10 * i
        annotations.append(dict(id=i, image_id=i, category_id=1, iscrowd=0, area=400,
                                bbox=[x, 10, 20, 20],
                                segmentation=[[x + 4, 14, x + 16, 14, x + 16, 26, x + 4, 26]]))
    (root / 'ann.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=[dict(id=1, name='square')])))


@pytest.mark.slow
def test_writes_every_sample_with_its_boxes_and_masks(tmp_path):
    write_coco(tmp_path)
    config = tmp_path / 'browse.py'
    config.write_text(f'''
default_scope = 'detlab'
train_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root='{tmp_path}', ann_file='ann.json',
    data_prefix=dict(img='images/'), metainfo=dict(classes=('square',)),
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_mask=True),
              dict(type='Resize', scale=(160, 120), keep_ratio=True),
              dict(type='PackDetInputs')]))
visualizer = dict(type='DetLocalVisualizer', bbox_color=(255, 0, 0), line_width=2)
''')
    out_dir = tmp_path / 'out'
    result = subprocess.run([sys.executable, str(TOOL), str(config), '--output-dir',
                             str(out_dir), '--not-show'], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out_dir.iterdir()) == ['0.jpg', '1.jpg']
    drawn = cv2.imread(str(out_dir / '0.jpg'))
    assert drawn.shape == (120, 160, 3)  # after the pipeline's Resize
    # the red box's top edge runs along the resized square (40, 20)-(80, 60), over black
    edge = drawn[19, 45:75]
    red, blue = edge[:, 2].astype(int), edge[:, 0].astype(int)  # BGR on disk
    assert red.mean() > 100 and (red - blue).mean() > 80
    assert drawn[5, 5].max() < 30  # far from the box: still black
    # Inside, the gt mask tints the white square with the box colour (red).
    inside = drawn[40, 60].astype(int)  # BGR
    assert inside[2] > 150 and inside[0] < 150


def test_unique_names():
    tool = load_tool()
    seen = {}
    assert [tool.unique_name('a.jpg', seen) for _ in range(3)] == ['a.jpg', 'a_1.jpg', 'a_2.jpg']
