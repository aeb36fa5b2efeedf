"""Running ONNX exports next to PyTorch: the tool, both models' detections on one image, and
their comparison (shared by the ONNX export tests)."""
import importlib.util

import numpy as np
import torch

from detlab.structures import DetDataSample
from helpers import REPO_ROOT


def load_tool():
    """tools/deployment/export_onnx.py as a module."""
    spec = importlib.util.spec_from_file_location(
        'export_onnx', REPO_ROOT / 'tools/deployment/export_onnx.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def torch_detections(detector, image: np.ndarray):
    """PyTorch's own predict on one (H, W, 3) BGR image, boxes in its pixels."""
    sample = DetDataSample(metainfo=dict(img_shape=image.shape[:2], ori_shape=image.shape[:2],
                                         scale_factor=(1.0, 1.0)))
    data = detector.data_preprocessor(
        dict(inputs=[torch.from_numpy(image).permute(2, 0, 1)], data_samples=[sample]))
    with torch.no_grad():
        return detector.predict(data['inputs'], data['data_samples'], rescale=False)[0]


def onnx_detections(session, image: np.ndarray) -> list:
    return session.run(None, {'image': image.transpose(2, 0, 1)[None].astype(np.float32)})


def assert_same_detections(onnx_out: list, pred: DetDataSample) -> None:
    """The same detections in any order (near-equal scores may swap places)."""
    boxes, scores, labels = onnx_out
    expected = pred.pred_instances
    assert labels.dtype == np.int64 and boxes.shape == (len(scores), 4)
    assert len(scores) == len(expected.scores) > 0
    box_diff = np.abs(boxes[:, None] - expected.bboxes.numpy()[None]).max(-1)
    score_diff = np.abs(scores[:, None] - expected.scores.numpy()[None])
    same_label = labels[:, None] == expected.labels.numpy()[None]
    match = (box_diff < 1e-2) & (score_diff < 1e-5) & same_label
    assert match.any(1).all() and match.any(0).all()
