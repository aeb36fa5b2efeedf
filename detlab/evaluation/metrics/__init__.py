from .coco_metric import CocoMetric
from .dump_det_results import DumpDetResults, load_det_results
from .voc_metric import VOCMetric

__all__ = ['CocoMetric', 'DumpDetResults', 'VOCMetric', 'load_det_results']
