"""export_onnx.py on every dense-head quickstart detector that predicts through
BaseDenseHead's decode path (RetinaNet, FCOS, ATSS, SSD): onnxruntime gives PyTorch's
detections on a real image. Heads with their own predict_by_feat (YOLOv3) or
_predict_by_feat_single (YOLOX) are refused."""
import mmcv
import pytest
import torch

from helpers import REPO_ROOT
from detlab.apis import init_detector
from detlab.apis.inference import load_model_config
from detlab.models.dense_heads import BaseDenseHead
from detlab.registry import MODELS
from detlab.utils import register_all_modules

ort = pytest.importorskip('onnxruntime', reason='onnxruntime is not installed '
                          '(pip install -e ".[onnx]")')
pytest.importorskip('onnx', reason='onnx is not installed (pip install -e ".[onnx]")')

from onnx_cases import (assert_same_detections, load_tool, onnx_detections,  # noqa: E402
                        torch_detections)


def dense_quickstart_configs() -> list:
    """Quickstart configs of single-stage detectors whose head is a dense head (not a DETR
    family set-prediction head)."""
    register_all_modules()
    names = []
    for path in sorted((REPO_ROOT / 'configs' / 'quickstart').glob('*.py')):
        model = load_model_config(str(path)).model
        head_type = MODELS.get(model.bbox_head.type) if 'bbox_head' in model else None
        if ('roi_head' not in model and head_type is not None
                and issubclass(head_type, BaseDenseHead)
                and head_type.predict_by_feat is BaseDenseHead.predict_by_feat
                and head_type._predict_by_feat_single is BaseDenseHead._predict_by_feat_single):
            names.append(path.stem)
    return names


@pytest.mark.parametrize('name', dense_quickstart_configs())
def test_every_dense_head_detector_exports(name, tmp_path, coco128):
    tool = load_tool()
    # Random weights, seeded (the suite's earlier tests leave the global generator anywhere,
    # and some draws leave a head without a box); every (prior, class) pair is a candidate so
    # that near-equal scores cannot fall on either side of an nms_pre cut, and the score cut
    # is below the classifiers' initial prior (0.01).
    torch.manual_seed(0)
    detector = init_detector(name, None, device='cpu',
                             cfg_options={'model.test_cfg.nms_pre': -1,
                                          'model.test_cfg.score_thr': 0.005})
    if not detector.bbox_head.use_sigmoid_cls:
        # SSD's random head sits at a near-uniform softmax, whose near-equal scores would
        # leave the boxes kept at the max_per_img cut to tie order: wider head weights, and
        # every box that survives NMS.
        for conv in detector.bbox_head.modules():
            if isinstance(conv, torch.nn.Conv2d):
                torch.nn.init.normal_(conv.weight, std=0.3)
        detector.bbox_head.test_cfg['max_per_img'] = -1
    image = mmcv.imresize(mmcv.imread(str(next((coco128 / 'images').rglob('*.jpg')))), (160, 128))
    tool.export(detector, str(tmp_path / f'{name}.onnx'), (128, 160))
    session = ort.InferenceSession(str(tmp_path / f'{name}.onnx'))
    assert_same_detections(onnx_detections(session, image), torch_detections(detector, image))


@pytest.mark.parametrize('name, head', [('yolov3_mobilenetv2_shapes', 'YOLOV3Head'),
                                        ('yolox_tiny_shapes', 'YOLOXHead')])
def test_heads_with_their_own_decoding_are_refused_naming_the_head(name, head, tmp_path):
    detector = init_detector(name, None, device='cpu')
    with pytest.raises(TypeError, match=f'{head} decodes with its own predict_by_feat'):
        load_tool().export(detector, str(tmp_path / 'model.onnx'), (128, 160))
    assert not list(tmp_path.iterdir())


def test_detr_family_detectors_are_refused_naming_the_head(tmp_path):
    detector = init_detector('dino-4scale_r18_shapes', None, device='cpu')
    with pytest.raises(TypeError, match='DINOHead is not a dense head'):
        load_tool().export(detector, str(tmp_path / 'dino.onnx'), (128, 160))
    assert not list(tmp_path.iterdir())
