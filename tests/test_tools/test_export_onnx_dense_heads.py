"""export_onnx.py on every dense-head quickstart detector (RetinaNet, and FCOS / ATSS where
detlab has them): onnxruntime gives PyTorch's detections on a real image."""
import importlib.util

import mmcv
import pytest

from helpers import REPO_ROOT
from detlab.apis import init_detector
from detlab.apis.inference import load_model_config

ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed '
                          '(pip install -e ".[onnx]")')
pytest.importorskip('onnx', reason='onnx is not installed (pip install -e ".[onnx]")')

from test_export_onnx import assert_same_detections, onnx_detections, torch_detections  # noqa: E402


def dense_quickstart_configs() -> list:
    names = []
    for path in sorted((REPO_ROOT / 'configs' / 'quickstart').glob('*.py')):
        model = load_model_config(str(path)).model
        if 'bbox_head' in model and 'roi_head' not in model:
            names.append(path.stem)
    return names


@pytest.mark.parametrize('name', dense_quickstart_configs())
def test_every_dense_head_detector_exports(name, tmp_path, coco128):
    spec = importlib.util.spec_from_file_location(
        'export_onnx', REPO_ROOT / 'tools/deployment/export_onnx.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    # Random weights; every (prior, class) pair is a candidate so that near-equal scores
    # cannot fall on either side of an nms_pre cut.
    detector = init_detector(name, None, device='cpu',
                             cfg_options={'model.test_cfg.nms_pre': -1,
                                          'model.test_cfg.score_thr': 0.05})
    image = mmcv.imresize(mmcv.imread(str(next((coco128 / 'images').rglob('*.jpg')))), (160, 128))
    tool.export(detector, str(tmp_path / f'{name}.onnx'), (128, 160))
    session = ort.InferenceSession(str(tmp_path / f'{name}.onnx'))
    assert_same_detections(onnx_detections(session, image), torch_detections(detector, image))
