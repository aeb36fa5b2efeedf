"""What the SSD/YOLOv3 parity test and tools/dev/measure_ssd_yolo.py share: the models,
the weights both get and the batch both see.

* Models: MMDetection's own configs (the byte-for-byte copies under
  tests/data/mmdet_3.3_configs/), no ImageNet weights, no data preprocessor (the batch
  comes normalised).
* Weights: ``helpers.fill_seeded_weights`` (every float entry from one seeded generator,
  in sorted key order), the predictors' weights scaled down so that box encodings stay a
  few units wide, then BatchNorm running statistics set from the batch
  (``rtmdet_parity.calibrate_batch_norms``); the state_dict is read back.
* Batch: rtmdet_parity's two coco128 photos, resized to fit SIZE x SIZE and padded.
"""
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict

from helpers import fill_seeded_weights
from rtmdet_parity import calibrate_batch_norms

#: Parity case -> (MMDetection config under tests/data/mmdet_3.3_configs/, input size).
CASES = {'ssd300': ('ssd/ssd300_coco.py', 300),
         'yolov3_d53': ('yolo/yolov3_d53_8xb8-ms-608-273e_coco.py', 320)}
#: Substrings of the predictors' state_dict keys and the factor their weights get.
PREDICTOR_SCALES = {'convs_pred': 0.3, 'reg_convs': 0.3}
#: Every MMDetection config of the ssd/ and yolo/ folders (state_dict signatures).
ALL_CONFIGS = ('ssd/ssd300_coco.py', 'ssd/ssd512_coco.py',
               'ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
               'yolo/yolov3_d53_8xb8-320-273e_coco.py',
               'yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py',
               'yolo/yolov3_d53_8xb8-ms-416-273e_coco.py',
               'yolo/yolov3_d53_8xb8-ms-608-273e_coco.py',
               'yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py',
               'yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py')


def parity_model_cfg(repo: Path, name: str) -> ConfigDict:
    """The model config of parity case ``name``."""
    cfg = Config.fromfile(str(repo / 'tests/data/mmdet_3.3_configs' / CASES[name][0]))
    model = cfg.model
    model.backbone.init_cfg = None
    model.pop('data_preprocessor')
    return model


def parity_state_dict(model: torch.nn.Module, inputs: torch.Tensor, seed: int = 0) -> dict:
    """Load the seeded weights described above into ``model``; return its state_dict."""
    fill_seeded_weights(model, seed)
    with torch.no_grad():
        for key, value in model.state_dict().items():
            if value.dim() == 4 and any(part in key for part in PREDICTOR_SCALES):
                scale = next(s for part, s in PREDICTOR_SCALES.items() if part in key)
                value.mul_(scale)
    calibrate_batch_norms(model, inputs)
    return {key: value.clone() for key, value in model.state_dict().items()}
