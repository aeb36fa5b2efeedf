"""DetInferencer on a folder of images: drawn images and JSON out, the same boxes as tools/test.py."""
import json

import mmcv
import numpy as np
import pytest

from detlab.apis import DetInferencer
from helpers import prediction_tolerance, tool_device


@pytest.fixture(scope='module')
def inferencer(quickstart_model):
    return DetInferencer(str(quickstart_model['config']), str(quickstart_model['checkpoint']),
                         device=tool_device(), show_progress=False)


def assert_same_predictions(record: dict, expected: dict) -> None:
    tolerance = prediction_tolerance()
    assert len(record['bboxes']) == len(expected['bboxes']) > 0
    np.testing.assert_allclose(record['bboxes'], expected['bboxes'], atol=tolerance['box'])
    np.testing.assert_allclose(record['scores'], expected['scores'], atol=tolerance['score'])
    assert record['labels'] == expected['labels']


@pytest.mark.slow
def test_folder_in_drawn_images_and_json_out_equal_to_test_tool(
        inferencer, quickstart_model, quickstart_test_predictions, tmp_path):
    images = quickstart_model['val_images']
    result = inferencer(str(quickstart_model['val_dir']), out_dir=str(tmp_path),
                        no_save_pred=False, pred_score_thr=0.0)
    assert len(result['predictions']) == len(images) == len(quickstart_test_predictions)
    assert result['visualization'] == []
    for image, record in zip(images, result['predictions']):
        saved = json.loads((tmp_path / 'preds' / f'{image.stem}.json').read_text())
        assert saved == pytest.approx(record)
        assert_same_predictions(saved, quickstart_test_predictions[image.name])
        drawn = mmcv.imread(str(tmp_path / 'vis' / image.name))
        assert drawn.shape == mmcv.imread(str(image)).shape
    assert not list(tmp_path.rglob('.tmp_*'))


@pytest.mark.slow
def test_batches_and_arrays(inferencer, quickstart_model, quickstart_test_predictions, tmp_path):
    images = quickstart_model['val_images'][:3]
    arrays = [mmcv.imread(str(image)) for image in images]
    result = inferencer(arrays, batch_size=1, return_vis=True, out_dir=str(tmp_path),
                        no_save_pred=False, no_save_vis=True)
    assert [v.shape for v in result['visualization']] == [a.shape for a in arrays]
    assert sorted(p.name for p in (tmp_path / 'preds').iterdir()) == ['0.json', '1.json', '2.json']
    assert not (tmp_path / 'vis').exists()
    for image, record in zip(images, result['predictions']):
        assert_same_predictions(record, quickstart_test_predictions[image.name])
    batched = inferencer([str(image) for image in images], batch_size=2)
    assert len(batched['predictions']) == 3
    assert all(len(record['bboxes']) > 0 for record in batched['predictions'])


@pytest.mark.slow
def test_score_threshold_only_changes_what_is_drawn(inferencer, quickstart_model):
    image = str(quickstart_model['val_images'][0])
    nothing = inferencer(image, return_vis=True, pred_score_thr=1.0)
    everything = inferencer(image, return_vis=True, pred_score_thr=0.0)
    assert nothing['predictions'] == everything['predictions']
    original = mmcv.imread(image, channel_order='rgb')
    assert np.array_equal(nothing['visualization'][0], original)
    assert not np.array_equal(everything['visualization'][0], original)


@pytest.mark.slow
def test_datasamples_empty_inputs_and_bad_inputs(inferencer, tmp_path):
    assert inferencer([]) == dict(predictions=[], visualization=[])
    samples = inferencer(np.zeros((40, 50, 3), np.uint8), return_datasamples=True)
    assert samples['predictions'][0].ori_shape == (40, 50)
    with pytest.raises(ValueError, match='No images in'):
        inferencer(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        inferencer(str(tmp_path / 'nope.jpg'))
    with pytest.raises(ValueError, match='batch_size'):
        inferencer([], batch_size=0)
    with pytest.raises(ValueError, match='config'):
        DetInferencer(None, 'weights.pth')


def test_list_models_is_on_the_class():
    assert 'retinanet_r50_fpn_1x_coco' in DetInferencer.list_models()
