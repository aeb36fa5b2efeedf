"""init_detector / inference_detector / list_models on the briefly trained quickstart model."""
import re

import mmcv
import numpy as np
import pytest
import torch

from helpers import REPO_ROOT
from detlab.apis import inference_detector, init_detector, list_models
from detlab.apis.inference import load_model_config


def test_list_models_names_every_config():
    on_disk = {path.stem for path in (REPO_ROOT / 'configs').rglob('*.py')
               if '_base_' not in path.parts and 'common' not in path.parts
               and not path.stem.endswith('_tta')}
    names = list_models()
    assert set(names) == on_disk and len(names) == len(on_disk)
    assert 'rtmdet_tta' not in names  # a model's test-time augmentation, not a model
    assert {'retinanet_r50_fpn_1x_coco', 'retinanet_r18_fpn_shapes'} <= set(names)
    assert 'default_runtime' not in names and 'retinanet_r50_fpn' not in names  # _base_ parts
    assert 'lsj-100e_coco-instance' not in names  # a recipe in common/, not a model
    for name in names:
        cfg = load_model_config(name)
        assert cfg.filename.endswith(f'{name}.py') and 'model' in cfg, name


def test_unknown_config_name_suggests_close_names():
    with pytest.raises(FileNotFoundError, match='retinanet_r18_fpn_shapes'):
        load_model_config('retinanet_r18_fpn_shape')


def test_a_checkpoint_given_as_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match='looks like a checkpoint'):
        load_model_config(str(tmp_path / 'iter_4.pth'))


@pytest.mark.slow
def test_config_name_works_where_a_path_does(quickstart_model):
    by_path = init_detector(str(REPO_ROOT / 'configs/quickstart/retinanet_r18_fpn_shapes.py'),
                            str(quickstart_model['checkpoint']), device='cpu')
    by_name = init_detector('retinanet_r18_fpn_shapes', str(quickstart_model['checkpoint']),
                            device='cpu')
    assert not by_name.training
    for (key, a), b in zip(by_path.state_dict().items(), by_name.state_dict().values()):
        assert torch.equal(a, b), key
    assert by_name.dataset_meta['classes'] == ('circle', 'rectangle', 'triangle')
    assert len(by_name.dataset_meta['palette']) == 3


@pytest.mark.slow
def test_checkpoint_weights_are_loaded(quickstart_model):
    from detlab.utils.checkpoint import load_checkpoint_file
    saved = load_checkpoint_file(str(quickstart_model['checkpoint']))['state_dict']
    model = init_detector(str(quickstart_model['config']), str(quickstart_model['checkpoint']),
                          device='cpu')
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_unsafe_checkpoint_is_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': np.random.RandomState(0)}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        init_detector('retinanet_r18_fpn_shapes', str(path), device='cpu')


@pytest.mark.slow
def test_palette_choices(quickstart_model):
    checkpoint = str(quickstart_model['checkpoint'])
    red = init_detector('retinanet_r18_fpn_shapes', checkpoint, palette='red', device='cpu')
    assert red.dataset_meta['palette'] == [(255, 0, 0)] * 3
    coco = init_detector('retinanet_r18_fpn_shapes', checkpoint, palette='coco', device='cpu')
    from detlab.datasets.metainfo import COCO_PALETTE
    assert coco.dataset_meta['palette'][:3] == [tuple(c) for c in COCO_PALETTE[:3]]
    with pytest.raises(ValueError, match='colour'):
        init_detector('retinanet_r18_fpn_shapes', checkpoint, palette='no-such', device='cpu')


@pytest.mark.slow
def test_path_and_array_give_the_same_detections(quickstart_model):
    model = init_detector(str(quickstart_model['config']), str(quickstart_model['checkpoint']),
                          device='cpu')
    paths = quickstart_model['val_images'][:2]
    from_paths = inference_detector(model, [str(p) for p in paths])
    from_array = inference_detector(model, mmcv.imread(str(paths[0])))
    assert isinstance(from_paths, list) and len(from_paths) == 2
    pred, same = from_paths[0].pred_instances, from_array.pred_instances
    assert len(pred) > 0
    torch.testing.assert_close(pred.bboxes, same.bboxes)
    torch.testing.assert_close(pred.scores, same.scores)
    assert from_array.img_path is None and re.search(r'\.\w+$', from_paths[0].img_path)
    height, width = mmcv.imread(str(paths[0])).shape[:2]
    assert from_paths[0].ori_shape == (height, width)
    assert float(pred.bboxes[:, 2].max()) <= width and float(pred.bboxes[:, 3].max()) <= height


def test_default_input_shape_follows_the_test_resize_and_padding():
    from detlab.apis.inference import FALLBACK_INPUT_SHAPE, default_input_shape
    assert default_input_shape(load_model_config('retinanet_r18_fpn_shapes')) == (192, 192)
    # Resize scale=(1333, 800) is (W, H); W rounds up to the pad_size_divisor of 32.
    assert default_input_shape(load_model_config('retinanet_r50_fpn_1x_coco')) == (800, 1344)
    cfg = load_model_config('retinanet_r18_fpn_shapes')
    cfg.test_dataloader.dataset.pipeline = [dict(type='LoadImageFromFile')]
    assert default_input_shape(cfg) == FALLBACK_INPUT_SHAPE
