"""MMDetection's ``mmdet.evaluation`` names import from ``detlab.evaluation``."""
import detlab.evaluation as evaluation
from detlab.registry import METRICS

# The names of MMDetection 3.3's mmdet/evaluation/{metrics,functional}/__init__.py
# for the parts detlab has (COCO and VOC boxes, result dumps, recall, class names).
MMDET_NAMES = [
    'CocoMetric', 'VOCMetric', 'DumpDetResults', 'voc_classes', 'coco_classes',
    'dataset_aliases', 'get_classes', 'average_precision', 'eval_map', 'print_map_summary',
    'eval_recalls', 'print_recall_summary', 'plot_num_recall', 'plot_iou_recall',
    'bbox_overlaps'
]


def test_mmdet_evaluation_names():
    from detlab.evaluation import CocoMetric, DumpDetResults, VOCMetric  # noqa: F401
    missing = [name for name in MMDET_NAMES if not hasattr(evaluation, name)]
    assert missing == []
    assert set(MMDET_NAMES) <= set(evaluation.__all__)
    for name in ('CocoMetric', 'VOCMetric', 'DumpDetResults'):
        assert METRICS.get(name) is getattr(evaluation, name)
