"""ExpMomentumEMA: YOLOX's and RTMDet's moving average of the weights, for mmengine's EMAHook."""
import math
from typing import Optional

import torch
from mmengine.model import ExponentialMovingAverage
from torch import Tensor, nn

from detlab.registry import MODELS


@MODELS.register_module()
class ExpMomentumEMA(ExponentialMovingAverage):
    """Exponential moving average whose momentum starts near 1 and decays to
    ``momentum``: at update ``steps`` (0-based),
    ``m = (1 - momentum) * exp(-(1 + steps) / gamma) + momentum`` and
    ``averaged = (1 - m) * averaged + m * source``, as MMDetection's.

    Args:
        model (nn.Module): The model to average.
        momentum (float): The final momentum. Defaults to 0.0002.
        gamma (int): Decay of the momentum, in updates. Defaults to 2000.
        interval (int): Update every ``interval`` steps. Defaults to 1.
        device (torch.device, optional): Where the averaged model lives.
        update_buffers (bool): Average buffers (BN statistics) too.
    """

    def __init__(self,
                 model: nn.Module,
                 momentum: float = 0.0002,
                 gamma: int = 2000,
                 interval: int = 1,
                 device: Optional[torch.device] = None,
                 update_buffers: bool = False) -> None:
        if gamma <= 0:
            raise ValueError(f'ExpMomentumEMA: gamma must be > 0, got {gamma}')
        super().__init__(model=model, momentum=momentum, interval=interval, device=device,
                         update_buffers=update_buffers)
        self.gamma = gamma

    def avg_func(self, averaged_param: Tensor, source_param: Tensor, steps: int) -> None:
        """Move ``averaged_param`` towards ``source_param`` in place."""
        momentum = (1 - self.momentum) * math.exp(-float(1 + steps) / self.gamma) + self.momentum
        averaged_param.mul_(1 - momentum).add_(source_param, alpha=momentum)
