"""What the YOLOX parity test and tools/dev/measure_yolox.py share: the weights
both models get and the batch both see, so that the numbers measured on
MMDetection and the test on detlab describe the same computation.

* Weights: every entry of the model's state_dict drawn from one seeded
  generator, in state_dict order (convs N(0, 1/fan_in), BN affine and running
  parameters near their neutral values, class and objectness biases that give
  scores of a few hundredths, box biases that give boxes a few strides wide),
  then the BatchNorm running statistics set from the batch (rtmdet_parity.py's
  ``seeded_state_dict``).
* Batch: rtmdet_parity.py's two coco128 photos, resized to fit SIZE x SIZE and
  padded with 114.
"""
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict
from rtmdet_parity import seeded_state_dict

#: The parity cases: MMDetection's config file under tests/data/mmdet_3.3_configs/yolox/, and
#: whether the head's L1 loss (YOLOX's last epochs) is on.
CONFIGS = {'tiny': ('yolox_tiny_8xb8-300e_coco.py', True),
           's': ('yolox_s_8xb8-300e_coco.py', False)}


def parity_model_cfg(repo: Path, name: str) -> ConfigDict:
    """The model config of parity case ``name`` (no preprocessor: the batch comes ready)."""
    cfg = Config.fromfile(str(repo / 'tests/data/mmdet_3.3_configs/yolox' / CONFIGS[name][0]))
    model = cfg.model
    model.pop('data_preprocessor')
    return model


def parity_state_dict(model: torch.nn.Module, inputs: torch.Tensor, seed: int = 0) -> dict:
    """Load the seeded weights described above into ``model``, its BatchNorm statistics
    from ``inputs``; return its state_dict."""
    return seeded_state_dict(model, inputs, reg_key='conv_reg',
                             head_rules=(('conv_cls', 0.5, -2.0), ('conv_obj', 0.5, -1.0),
                                         ('conv_reg', 0.2, 1.0)), seed=seed)
