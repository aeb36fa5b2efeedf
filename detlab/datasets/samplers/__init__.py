"""detlab's data samplers; importing registers them."""
from .batch_sampler import AspectRatioBatchSampler
from .client_sampler import ClientSampler

__all__ = ['AspectRatioBatchSampler', 'ClientSampler']
