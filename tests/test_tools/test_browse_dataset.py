"""tools/analysis_tools/browse_dataset.py draws the training samples of a config."""
import pytest
import importlib.util
import json
import subprocess
import sys

import cv2
import numpy as np

from detlab.structures.mask import BitmapMasks

from helpers import REPO_ROOT

TOOL = REPO_ROOT / 'tools/analysis_tools/browse_dataset.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('browse_dataset', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_coco(root):
    """Two 60x80 black images, each with a white square and its annotation."""
    (root / 'images').mkdir()
    images, annotations = [], []
    for i in range(2):
        img = np.zeros((60, 80, 3), np.uint8)
        img[10:30, 20 + 10 * i:40 + 10 * i] = 255
        cv2.imwrite(str(root / 'images' / f'{i}.jpg'), img)
        images.append(dict(id=i, file_name=f'{i}.jpg', height=60, width=80))
        annotations.append(dict(id=i, image_id=i, category_id=1, iscrowd=0, area=400,
                                bbox=[20 + 10 * i, 10, 20, 20]))
    (root / 'ann.json').write_text(json.dumps(dict(
        images=images, annotations=annotations, categories=[dict(id=1, name='square')])))


@pytest.mark.slow
def test_writes_every_sample_with_its_boxes(tmp_path):
    write_coco(tmp_path)
    config = tmp_path / 'browse.py'
    config.write_text(f'''
default_scope = 'detlab'
train_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root='{tmp_path}', ann_file='ann.json',
    data_prefix=dict(img='images/'), metainfo=dict(classes=('square',)),
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
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


def test_mask_drawing_and_unique_names():
    tool = load_tool()
    img = np.zeros((4, 5, 3), np.uint8)
    masks = np.zeros((1, 4, 5), np.uint8)
    masks[0, 1:3, 1:4] = 1
    drawn = tool.draw_masks(img, BitmapMasks(masks, 4, 5), [0], [(200, 100, 0)])
    assert drawn[1, 1].tolist() == [100, 50, 0] and drawn[0, 0].tolist() == [0, 0, 0]
    seen = {}
    assert [tool.unique_name('a.jpg', seen) for _ in range(3)] == ['a.jpg', 'a_1.jpg', 'a_2.jpg']
