"""tools/deployment/export_onnx.py: onnxruntime gives PyTorch's detections on real images."""

import mmcv
import pytest

from helpers import assert_ok, run_tool
from onnx_cases import assert_same_detections, load_tool, onnx_detections, torch_detections
from detlab.apis import init_detector

ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed '
                          '(pip install -e ".[onnx]")')
pytest.importorskip('onnx', reason='onnx is not installed (pip install -e ".[onnx]")')


@pytest.fixture(scope='module')
def detector(quickstart_model):
    return init_detector(str(quickstart_model['config']), str(quickstart_model['checkpoint']),
                         device='cpu')


@pytest.mark.slow
def test_dynamic_export_matches_pytorch_on_real_images(quickstart_model, detector, tmp_path):
    out = tmp_path / 'model.onnx'
    output = assert_ok(run_tool('tools/deployment/export_onnx.py', quickstart_model['config'],
                                quickstart_model['checkpoint'], '--out', out, '--dynamic'))
    assert 'dynamic height/width' in output and out.is_file()
    session = ort.InferenceSession(str(out))
    assert [o.name for o in session.get_outputs()] == ['boxes', 'scores', 'labels']
    images = quickstart_model['val_images'][:2]
    for image, shape in zip(images, [(192, 192), (160, 224)]):
        resized = mmcv.imresize(mmcv.imread(str(image)), shape[::-1])
        assert_same_detections(onnx_detections(session, resized),
                               torch_detections(detector, resized))


@pytest.mark.slow
def test_static_export_and_empty_output(detector, tmp_path, coco128):
    tool = load_tool()
    image = mmcv.imresize(mmcv.imread(str(next((coco128 / 'images').rglob('*.jpg')))), (224, 160))
    tool.export(detector, str(tmp_path / 'static.onnx'), (160, 224))
    session = ort.InferenceSession(str(tmp_path / 'static.onnx'))
    assert session.get_inputs()[0].shape == [1, 3, 160, 224]
    assert_same_detections(onnx_detections(session, image), torch_detections(detector, image))

    detector.bbox_head.test_cfg = dict(detector.bbox_head.test_cfg, score_thr=1.0)
    try:
        tool.export(detector, str(tmp_path / 'none.onnx'), (160, 224))
    finally:
        detector.bbox_head.test_cfg = dict(detector.bbox_head.test_cfg, score_thr=0.005)
    boxes, scores, labels = onnx_detections(ort.InferenceSession(str(tmp_path / 'none.onnx')),
                                            image)
    assert boxes.shape == (0, 4) and scores.shape == (0,) and labels.shape == (0,)


@pytest.mark.slow
def test_nms_that_onnx_cannot_hold_is_refused(detector, tmp_path):
    tool = load_tool()
    original = detector.bbox_head.test_cfg
    detector.bbox_head.test_cfg = dict(original, nms=dict(type='soft_nms', iou_threshold=0.5))
    try:
        with pytest.raises(ValueError, match='soft_nms'):
            tool.export(detector, str(tmp_path / 'x.onnx'), (64, 64))
    finally:
        detector.bbox_head.test_cfg = original
    assert not (tmp_path / 'x.onnx').exists()
