"""Random demo batches and model configs for tests, under MMDetection's ``mmdet.testing``
names."""
from detlab.models.task_modules.demodata import random_boxes
from .configs import get_detector_cfg, get_roi_head_cfg
from .demo_inputs import demo_mm_inputs, demo_mm_proposals, demo_mm_sampling_results

__all__ = ['demo_mm_inputs', 'demo_mm_proposals', 'demo_mm_sampling_results',
           'get_detector_cfg', 'get_roi_head_cfg', 'random_boxes']
