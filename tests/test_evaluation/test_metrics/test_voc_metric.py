"""VOCMetric on a small case with hand-computed AP (both modes), difficult boxes, keys."""
import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from detlab.evaluation import VOCMetric
from detlab.registry import METRICS
from detlab.structures import DetDataSample

CLASSES = ('cat', 'dog')


def _sample(img_id, gt, difficult, preds, scale=1.0):
    """gt/difficult: [(x1, y1, x2, y2, label)], preds: [(x1, y1, x2, y2, score, label)]."""
    sample = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(200, 200),
                                         scale_factor=(scale, scale)))

    def instances(rows):
        boxes = torch.tensor([r[:4] for r in rows], dtype=torch.float32).reshape(-1, 4)
        return InstanceData(bboxes=boxes * scale,
                            labels=torch.tensor([r[4] for r in rows], dtype=torch.long))

    sample.gt_instances = instances(gt)
    sample.ignored_instances = instances(difficult)
    sample.pred_instances = InstanceData(
        bboxes=torch.tensor([p[:4] for p in preds], dtype=torch.float32).reshape(-1, 4),
        scores=torch.tensor([p[4] for p in preds]),
        labels=torch.tensor([p[5] for p in preds], dtype=torch.long))
    return sample.to_dict()


# Class 'cat' as in test_mean_ap: d1 TP, d2 FP, d3 TP, d4 on a difficult box;
# 3 counted gts -> AP 5/9 ('area') or 6/11 ('11points'). 'dog': one perfect hit.
SAMPLES = [
    _sample(1, gt=[(0, 0, 10, 10, 0), (100, 100, 120, 120, 0), (150, 150, 190, 190, 1)],
            difficult=[], preds=[(0, 0, 10, 10, 0.9, 0), (50, 50, 60, 60, 0.8, 0),
                                 (150, 150, 190, 190, 0.5, 1)]),
    _sample(2, gt=[(20, 20, 30, 30, 0)], difficult=[(70, 70, 80, 80, 0)],
            preds=[(20, 20, 30, 30, 0.7, 0), (70, 70, 80, 80, 0.6, 0)], scale=2.0),
]


@pytest.fixture(autouse=True)
def _logger():
    MMLogger.get_instance('test_voc_metric')


def _run(**kwargs):
    metric = METRICS.build(dict(type='VOCMetric', **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    metric.process({}, SAMPLES)
    return metric.evaluate(len(SAMPLES))


@pytest.mark.parametrize('mode,cat_ap', [('area', 5 / 9), ('11points', 6 / 11)])
def test_map_by_hand(mode, cat_ap):
    results = _run(eval_mode=mode)
    assert list(results) == ['pascal_voc/mAP', 'pascal_voc/AP50']
    assert results['pascal_voc/mAP'] == pytest.approx((cat_ap + 1.0) / 2, abs=1e-6)
    assert results['pascal_voc/AP50'] == round((cat_ap + 1.0) / 2, 3)


def test_several_iou_thresholds_and_classes_table(tmp_path):
    MMLogger.get_instance('test_voc_metric_table', log_file=str(tmp_path / 'voc.log'))
    results = _run(iou_thrs=[0.5, 0.75], eval_mode='area')
    assert list(results) == ['pascal_voc/mAP', 'pascal_voc/AP50', 'pascal_voc/AP75']
    assert results['pascal_voc/mAP'] == pytest.approx(
        np.mean([results['pascal_voc/AP50'], results['pascal_voc/AP75']]), abs=1e-3)
    out = (tmp_path / 'voc.log').read_text()
    assert '| cat' in out and '| dog' in out and '| mAP' in out


def test_recall_metric():
    results = _run(metric='recall', proposal_nums=(1, 10), iou_thrs=[0.5])
    # All labels pooled, 4 counted gts: the top box of each image finds 2; all
    # boxes find 3 (the box at (100, 100) is never proposed).
    assert results == {'pascal_voc/recall@1@0.5': 0.5, 'pascal_voc/recall@10@0.5': 0.75}


def test_bad_arguments():
    with pytest.raises(KeyError, match="'AP'"):
        VOCMetric(metric='AP')
    with pytest.raises(ValueError, match="'points'"):
        VOCMetric(eval_mode='points')
    with pytest.warns(UserWarning, match='VOC2012'):
        metric = VOCMetric(eval_mode='11points')
        metric.dataset_meta = dict(classes=CLASSES, dataset_type='VOC2012')
        metric.process({}, SAMPLES)
        metric.evaluate(len(SAMPLES))
