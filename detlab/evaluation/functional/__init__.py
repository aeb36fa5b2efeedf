"""Pure metric math: COCO conversion and COCOeval summaries, no BaseMetric."""
from .coco_eval import (COCO_IOU_THRS, COCO_MAX_DETS, COCO_STAT_NAMES, DECIMALS,
                        DEFAULT_METRIC_ITEMS, PER_CLASS_HEADERS, check_metric_items, evaluate_bbox,
                        format_table, per_class_ap, per_class_table, stats_to_dict)
from .coco_format import (coco_from_dict, dump_atomic, gt_to_coco_dict, load_coco,
                          load_detections, results_to_coco_json, xyxy_to_xywh)

__all__ = [
    'COCO_IOU_THRS', 'COCO_MAX_DETS', 'COCO_STAT_NAMES', 'DECIMALS', 'DEFAULT_METRIC_ITEMS',
    'PER_CLASS_HEADERS', 'check_metric_items', 'evaluate_bbox', 'format_table', 'per_class_ap',
    'per_class_table', 'stats_to_dict', 'coco_from_dict', 'dump_atomic', 'gt_to_coco_dict',
    'load_coco', 'load_detections', 'results_to_coco_json', 'xyxy_to_xywh'
]
