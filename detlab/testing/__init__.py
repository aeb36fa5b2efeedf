"""Random demo batches for tests, under MMDetection's ``mmdet.testing`` names."""
from .demo_inputs import demo_mm_inputs, demo_mm_proposals, demo_mm_sampling_results

__all__ = ['demo_mm_inputs', 'demo_mm_proposals', 'demo_mm_sampling_results']
