"""DetVisualizationHook writes one drawing per test image and samples validation."""
import os
import uuid
from types import SimpleNamespace

import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import HOOKS
from detlab.structures import DetDataSample
from detlab.visualization import DetLocalVisualizer

H, W = 32, 48
TIMESTAMP = '20240101_000000'


@pytest.fixture
def visualizer(tmp_path):
    # The hook takes the most recently created visualizer, as the runner's.
    vis = DetLocalVisualizer.get_instance(f'hook_test_{uuid.uuid4().hex}',
                                          vis_backends=[dict(type='LocalVisBackend')],
                                          save_dir=str(tmp_path / 'backend'))
    vis.dataset_meta = dict(classes=('cat', ))
    return vis


def _samples(tmp_path, names):
    samples = []
    for i, name in enumerate(names):
        path = tmp_path / 'images' / name
        mmcv.imwrite(np.zeros((H, W, 3), np.uint8), str(path))
        sample = DetDataSample(metainfo=dict(img_id=i, img_path=str(path)))
        sample.pred_instances = InstanceData(bboxes=torch.tensor([[4., 4., 30., 20.]]),
                                             labels=torch.tensor([0]),
                                             scores=torch.tensor([0.9]))
        samples.append(sample)
    return samples


def _runner(tmp_path, it=0):
    return SimpleNamespace(work_dir=str(tmp_path / 'work'), timestamp=TIMESTAMP, iter=it)


def test_test_iter_writes_one_image_per_sample(tmp_path, visualizer):
    hook = HOOKS.build(dict(type='DetVisualizationHook', draw=True, test_out_dir='vis'))
    runner = _runner(tmp_path)
    hook.after_test_iter(runner, 0, {}, _samples(tmp_path, ['a.jpg', 'b.png']))
    hook.after_test_iter(runner, 1, {}, _samples(tmp_path, ['c.jpg']))
    out_dir = tmp_path / 'work' / TIMESTAMP / 'vis'
    assert sorted(os.listdir(out_dir)) == ['a.jpg', 'b.png', 'c.jpg']
    drawn = mmcv.imread(str(out_dir / 'b.png'))
    assert drawn.shape == (H, W, 3) and drawn.any()  # predictions drawn on it
    assert not (tmp_path / 'backend' / 'vis_data' / 'vis_image').exists()  # files, not backends


def test_draw_false_does_nothing(tmp_path, visualizer):
    hook = HOOKS.build(dict(type='DetVisualizationHook', test_out_dir='vis'))
    hook.after_test_iter(_runner(tmp_path), 0, {}, _samples(tmp_path, ['a.jpg']))
    hook.after_val_iter(_runner(tmp_path), 0, {}, _samples(tmp_path, ['a.jpg']))
    assert not (tmp_path / 'work').exists()
    assert not (tmp_path / 'backend' / 'vis_data' / 'vis_image').exists()


def test_val_iter_draws_first_sample_every_interval(tmp_path, visualizer):
    hook = HOOKS.build(dict(type='DetVisualizationHook', draw=True, interval=2))
    runner = _runner(tmp_path)
    for batch_idx in range(4):
        hook.after_val_iter(runner, batch_idx, {}, _samples(tmp_path, ['a.jpg', 'b.jpg']))
    images = tmp_path / 'backend' / 'vis_data' / 'vis_image'
    assert sorted(os.listdir(images)) == ['val_img_0.png', 'val_img_2.png']


def test_bad_interval_and_missing_image(tmp_path, visualizer):
    with pytest.raises(ValueError, match='interval'):
        HOOKS.build(dict(type='DetVisualizationHook', interval=0))
    hook = HOOKS.build(dict(type='DetVisualizationHook', draw=True))
    sample = _samples(tmp_path, ['a.jpg'])[0]
    sample.set_metainfo(dict(img_path=str(tmp_path / 'missing.jpg')))
    with pytest.raises(FileNotFoundError, match='missing.jpg'):
        hook.after_test_iter(_runner(tmp_path), 0, {}, [sample])


@pytest.fixture
def as_rank_1(monkeypatch):
    """mmengine's rank helpers answer as the second process of a run."""
    from mmengine.dist import utils as dist_utils
    monkeypatch.setattr(dist_utils, 'get_rank', lambda group=None: 1)


def test_other_ranks_keep_class_names_and_leave_validation_drawing_to_rank_0(
        tmp_path, visualizer, as_rank_1):
    # mmengine's Visualizer answers dataset_meta on rank 0 only; rank 1 crashed
    # in add_datasample on `None.get('classes')`.
    visualizer.dataset_meta = dict(classes=('cat', ))
    assert visualizer.dataset_meta == dict(classes=('cat', ))
    hook = HOOKS.build(dict(type='DetVisualizationHook', draw=True, interval=1))
    hook.after_val_iter(_runner(tmp_path), 0, {}, _samples(tmp_path, ['a.jpg']))
    hook.after_test_iter(_runner(tmp_path), 0, {}, _samples(tmp_path, ['a.jpg']))
    assert not (tmp_path / 'backend' / 'vis_data').exists()

