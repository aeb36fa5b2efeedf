"""detlab's data samplers; importing registers them."""
from .batch_sampler import AspectRatioBatchSampler

__all__ = ['AspectRatioBatchSampler']
