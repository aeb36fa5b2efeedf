"""Pure metric math on numpy arrays: COCO and VOC AP, recall, error analysis; no BaseMetric."""
from .analysis import (BACKGROUND, OperatingPoint, PRCurve, best_f1, confusion_matrix,
                       image_confusion, pr_curves)
from .bbox_overlaps import bbox_overlaps
from .class_names import coco_classes, dataset_aliases, get_classes, voc_classes
from .coco_eval import (COCO_EVAL_BACKENDS, COCO_IOU_THRS, COCO_MAX_DETS, COCO_STAT_NAMES,
                        DECIMALS, DEFAULT_METRIC_ITEMS, PER_CLASS_HEADERS, check_metric_items,
                        evaluate_bbox, evaluate_segm, format_table, per_class_ap,
                        per_class_table, stats_to_dict)
from .coco_format import (DetectionArrays, check_image_ids, coco_from_dict,
                          detections_from_results, dump_atomic, gt_to_coco_dict, load_coco,
                          load_detections, results_to_coco_json, rle_with_str_counts,
                          segm_results_to_coco_json, xyxy_to_xywh)
from .coco_summary import AREA_RANGES, RECALL_THRS, CocoEvalResult, summarize
from .fast_coco_eval import fast_coco_eval
from .mean_ap import (AP_MODES, average_precision, eval_map, get_cls_results,
                      print_map_summary, tpfp_default)
from .recall import eval_recalls, plot_iou_recall, plot_num_recall, print_recall_summary

__all__ = [
    # MMDetection's mmdet.evaluation.functional names (for the datasets detlab has)
    'voc_classes', 'coco_classes', 'dataset_aliases', 'get_classes', 'average_precision',
    'eval_map', 'print_map_summary', 'eval_recalls', 'print_recall_summary', 'plot_num_recall',
    'plot_iou_recall', 'bbox_overlaps',
    # detlab's
    'BACKGROUND', 'OperatingPoint', 'PRCurve', 'best_f1', 'confusion_matrix', 'image_confusion',
    'pr_curves', 'COCO_EVAL_BACKENDS', 'COCO_IOU_THRS', 'COCO_MAX_DETS', 'COCO_STAT_NAMES',
    'DECIMALS', 'DEFAULT_METRIC_ITEMS', 'PER_CLASS_HEADERS', 'check_metric_items',
    'evaluate_bbox', 'evaluate_segm', 'format_table', 'per_class_ap', 'per_class_table',
    'stats_to_dict',
    'DetectionArrays', 'check_image_ids', 'coco_from_dict', 'detections_from_results',
    'dump_atomic', 'gt_to_coco_dict', 'load_coco', 'load_detections', 'results_to_coco_json',
    'rle_with_str_counts', 'segm_results_to_coco_json',
    'xyxy_to_xywh', 'AREA_RANGES', 'RECALL_THRS', 'CocoEvalResult', 'summarize',
    'fast_coco_eval', 'AP_MODES', 'get_cls_results', 'tpfp_default'
]
