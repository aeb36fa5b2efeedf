from .coco_metric import CocoMetric
from .dump_det_results import DumpDetResults, load_det_results

__all__ = ['CocoMetric', 'DumpDetResults', 'load_det_results']
