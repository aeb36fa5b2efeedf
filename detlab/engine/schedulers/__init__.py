"""Parameter schedulers beyond mmengine's."""
from .quadratic_warmup import (QuadraticWarmupLR, QuadraticWarmupMomentum,
                               QuadraticWarmupParamScheduler)

__all__ = ['QuadraticWarmupLR', 'QuadraticWarmupMomentum', 'QuadraticWarmupParamScheduler']
