"""What the YOLOX parity test and tools/dev/measure_yolox.py share: the weights
both models get and the batch both see, so that the numbers measured on
MMDetection and the test on detlab describe the same computation.

* Weights: every entry of the model's state_dict drawn from one seeded
  generator, in state_dict order (convs N(0, 1/fan_in), BN affine and running
  parameters near their neutral values, class and objectness biases that give
  scores of a few hundredths, box biases that give boxes a few strides wide),
  then the BatchNorm running statistics set from the batch (as rtmdet_parity.py).
* Batch: rtmdet_parity.py's two coco128 photos, resized to fit SIZE x SIZE and
  padded with 114.
"""
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict
from rtmdet_parity import calibrate_batch_norms

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
    generator = torch.Generator().manual_seed(seed)

    def draw(shape, scale=1.0, shift=0.0):
        return torch.randn(shape, generator=generator) * scale + shift

    weights = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            weights[key] = value
        elif key.endswith('running_var'):
            weights[key] = torch.rand(value.shape, generator=generator) * 0.5 + 0.75
        elif key.endswith('running_mean'):
            weights[key] = draw(value.shape, 0.1)
        elif value.dim() == 4:
            fan_in = value[0].numel()
            weights[key] = draw(value.shape, (0.3 if 'conv_reg' in key else 1.0) * fan_in ** -0.5)
        elif 'conv_cls' in key:
            weights[key] = draw(value.shape, 0.5, -2.0)
        elif 'conv_obj' in key:
            weights[key] = draw(value.shape, 0.5, -1.0)
        elif 'conv_reg' in key:
            weights[key] = draw(value.shape, 0.2, 1.0)
        elif key.endswith('.weight'):
            weights[key] = draw(value.shape, 0.1, 1.0)
        else:
            weights[key] = draw(value.shape, 0.1)
    model.load_state_dict(weights, strict=True)
    calibrate_batch_norms(model, inputs)
    return {key: value.clone() for key, value in model.state_dict().items()}
