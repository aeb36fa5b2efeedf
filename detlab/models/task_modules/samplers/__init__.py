"""Samplers: which assigned priors a head trains on."""
from .pseudo_sampler import PseudoSampler
from .random_sampler import RandomSampler
from .sampling_result import SamplingResult, SlotSamplingResult

__all__ = ['PseudoSampler', 'SamplingResult', 'RandomSampler', 'SlotSamplingResult']
