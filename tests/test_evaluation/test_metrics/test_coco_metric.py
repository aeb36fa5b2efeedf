"""CocoMetric: process + evaluate with an ann file and without, keys, mapping, output."""
import json
import uuid

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from detlab.evaluation.metrics import CocoMetric
from detlab.registry import METRICS
from detlab.structures import DetDataSample

# Gapped, unsorted category ids as in real COCO files; 'bird' has no gt.
CATEGORIES = [dict(id=3, name='dog'), dict(id=1, name='cat'), dict(id=7, name='bird')]
CLASSES = ('cat', 'dog', 'bird')
# As MMDetection numbers them: label i is the i-th file category named in the
# classes, so with this file label 0 is 'dog' (id 3), 1 'cat' (1), 2 'bird' (7).
DOG, CAT, BIRD = 0, 1, 2
# img_id -> list of (x1, y1, x2, y2, label) in original-image pixels.
GT = {1: [(10, 10, 50, 50, CAT), (60, 60, 90, 90, DOG)], 2: [(0, 0, 20, 20, CAT)]}
SIZE = 100
SIX_KEYS = ['coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
            'coco/bbox_mAP_m', 'coco/bbox_mAP_l']


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / 'metric.log'
    MMLogger.get_instance(f'test_coco_metric_{uuid.uuid4().hex}', log_file=str(path))
    return path


@pytest.fixture
def ann_file(tmp_path):
    cat_id_of_label = {CAT: 1, DOG: 3}
    anns = [dict(id=i + 1, image_id=img_id, category_id=cat_id_of_label[lab], iscrowd=0,
                 bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1))
            for i, (img_id, (x1, y1, x2, y2, lab)) in enumerate(
                (img_id, box) for img_id, boxes in GT.items() for box in boxes)]
    dataset = dict(images=[dict(id=i, width=SIZE, height=SIZE, file_name=f'{i}.jpg')
                           for i in GT], annotations=anns, categories=CATEGORIES)
    path = tmp_path / 'ann.json'
    path.write_text(json.dumps(dataset))
    return str(path)


def _sample(img_id, pred_labels=None, scale=1.0, with_gt=False):
    """A DetDataSample dict with perfect predictions (optionally relabelled)."""
    boxes = torch.tensor([b[:4] for b in GT[img_id]], dtype=torch.float32)
    labels = torch.tensor([b[4] for b in GT[img_id]])
    sample = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(SIZE, SIZE),
                                         scale_factor=(scale, scale)))
    sample.pred_instances = InstanceData(
        bboxes=boxes, scores=torch.full((len(boxes), ), 0.9),
        labels=labels if pred_labels is None else torch.tensor(pred_labels))
    if with_gt:  # gt lives in the resized image, as the pipeline leaves it
        sample.gt_instances = InstanceData(bboxes=boxes * scale, labels=labels)
    return sample.to_dict()


def _run(metric, samples, classes=CLASSES):
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_perfect_predictions_with_ann_file(ann_file, log_file, capsys):
    results = _run(CocoMetric(ann_file=ann_file), [_sample(1), _sample(2)])
    assert list(results) == SIX_KEYS
    assert results['coco/bbox_mAP'] == 1.0
    assert results['coco/bbox_mAP_l'] == -1.0  # no large gt
    assert all(isinstance(v, float) for v in results.values())
    log = log_file.read_text()
    assert 'Average Precision' in log and 'bbox_mAP_copypaste: 1.000' in log
    # pycocotools' progress prints are swallowed
    assert 'index created' not in capsys.readouterr().out
    assert 'Accumulating' not in log


def test_labels_map_to_categories_in_file_order(ann_file, log_file):
    # The ann file lists dog (id 3) before cat (id 1): label 0 is dog whatever
    # the order of the configured classes, as in MMDetection.
    for classes in (CLASSES, ('dog', 'cat', 'bird'), ('bird', 'cat', 'dog')):
        metric = CocoMetric(ann_file=ann_file)
        assert _run(metric, [_sample(1), _sample(2)], classes)['coco/bbox_mAP'] == 1.0
        assert metric.cat_ids == [3, 1, 7]
    # Swapped labels hit the wrong categories: nothing matches.
    wrong = _run(CocoMetric(ann_file=ann_file), [_sample(1, [DOG, CAT]), _sample(2, [DOG])])
    assert wrong['coco/bbox_mAP'] == 0.0


def test_ann_file_none_uses_gt_instances_rescaled(log_file):
    samples = [_sample(1, scale=2.0, with_gt=True), _sample(2, scale=2.0, with_gt=True)]
    assert _run(CocoMetric(), samples)['coco/bbox_mAP'] == 1.0


def test_ann_file_none_uses_instances_list(log_file):
    sample = _sample(1)
    sample['instances'] = [dict(bbox=list(b[:4]), bbox_label=b[4], ignore_flag=0)
                           for b in GT[1]]
    results = _run(CocoMetric(), [sample])
    assert results['coco/bbox_mAP'] == 1.0


def test_ann_file_none_without_gt_names_the_problem(log_file):
    with pytest.raises(KeyError, match='gt_instances'):
        CocoMetric().process({}, [_sample(1)])


def test_missed_class_and_prefix_and_metric_items(ann_file, log_file):
    samples = [_sample(1, pred_labels=[CAT, CAT]), _sample(2)]  # dog predicted as cat
    metric = METRICS.build(dict(type='CocoMetric', ann_file=ann_file, prefix='val',
                                metric_items=['mAP', 'AR@100']))
    results = _run(metric, samples)
    assert list(results) == ['val/bbox_mAP', 'val/bbox_AR@100']
    assert 0.0 < results['val/bbox_mAP'] < 1.0


def test_classwise_keys_and_table(ann_file, log_file):
    samples = [_sample(1, pred_labels=[CAT, BIRD]), _sample(2)]  # dog predicted as bird
    results = _run(CocoMetric(ann_file=ann_file, classwise=True), samples)
    assert results['coco/cat_precision'] == 1.0
    assert results['coco/dog_precision'] == 0.0
    assert np.isnan(results['coco/bird_precision'])  # no gt for bird
    log = log_file.read_text()
    assert '| category | mAP' in log
    assert any(line.startswith('| bird') and 'nan' in line for line in log.splitlines())


def test_format_only_writes_results_json(ann_file, tmp_path, log_file):
    prefix = tmp_path / 'out' / 'preds'
    metric = CocoMetric(ann_file=ann_file, format_only=True, outfile_prefix=str(prefix))
    assert _run(metric, [_sample(1, pred_labels=[DOG, BIRD])]) == {}
    written = json.loads((tmp_path / 'out' / 'preds.bbox.json').read_text())
    assert [r['category_id'] for r in written] == [3, 7]
    assert written[0]['bbox'] == [10, 10, 40, 40] and written[0]['image_id'] == 1
    assert written[0]['score'] == pytest.approx(0.9)


def test_no_predictions_give_zero(ann_file, log_file):
    empty = DetDataSample(metainfo=dict(img_id=1, ori_shape=(SIZE, SIZE)))
    empty.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0),
                                        labels=torch.zeros(0, dtype=torch.long))
    assert _run(CocoMetric(ann_file=ann_file), [empty.to_dict()])['coco/bbox_mAP'] == 0.0


def test_bad_arguments_give_clear_errors(ann_file, tmp_path):
    with pytest.raises(KeyError, match=r"\['bbox', 'segm', 'proposal', 'proposal_fast'\]"):
        CocoMetric(metric='keypoints')
    with pytest.raises(FileNotFoundError, match='nowhere.json'):
        CocoMetric(ann_file=str(tmp_path / 'nowhere.json'))
    with pytest.raises(RuntimeError, match='backend_args'):
        CocoMetric(file_client_args=dict(backend='disk'))
    with pytest.raises(ValueError, match='outfile_prefix'):
        CocoMetric(format_only=True)
    with pytest.raises(KeyError, match='valid items'):
        CocoMetric(metric_items=['mAP_xl'])


def test_classes_partly_missing_from_ann_file(ann_file, log_file):
    # MMDetection keeps the classes the file has, in file order: cat (1), bird (7).
    metric = CocoMetric(ann_file=ann_file)
    samples = [_sample(1, pred_labels=[0, 1]), _sample(2, pred_labels=[0])]
    results = _run(metric, samples, classes=('cat', 'horse', 'bird'))
    assert metric.cat_ids == [1, 7]
    assert results['coco/bbox_mAP'] == 1.0  # dog is not evaluated; bird has no gt
    with pytest.raises(ValueError, match="'horse'.*ann.json"):
        _run(CocoMetric(ann_file=ann_file), [_sample(1)], classes=('horse', ))


def test_sort_categories_orders_by_id(ann_file):
    metric = CocoMetric(ann_file=ann_file, sort_categories=True)
    assert [c['id'] for c in metric._coco_api.dataset['categories']] == [1, 3, 7]


def test_classwise_rows_named_by_category_not_label_order(tmp_path, log_file):
    # cat=1, dog=2, classes=('dog', 'cat'). COCOeval sorts its
    # category axis by id (cat first) while label 0 is dog: rows looked up by
    # label order would report a perfect cat detection as dog AP 1.0, cat AP 0.0.
    dataset = dict(images=[dict(id=1, width=SIZE, height=SIZE)],
                   annotations=[dict(id=1, image_id=1, category_id=1, iscrowd=0,
                                     bbox=[10, 10, 40, 40], area=1600)],
                   categories=[dict(id=2, name='dog'), dict(id=1, name='cat')])
    path = tmp_path / 'cat_dog.json'
    path.write_text(json.dumps(dataset))
    sample = DetDataSample(metainfo=dict(img_id=1, ori_shape=(SIZE, SIZE)))
    sample.pred_instances = InstanceData(bboxes=torch.tensor([[10., 10., 50., 50.]]),
                                         scores=torch.tensor([0.9]), labels=torch.tensor([1]))
    metric = CocoMetric(ann_file=str(path), classwise=True)
    results = _run(metric, [sample.to_dict()], classes=('dog', 'cat'))
    assert metric.cat_ids == [2, 1]  # label 1 is cat
    assert results['coco/cat_precision'] == 1.0
    assert np.isnan(results['coco/dog_precision'])  # no dog ground truth
    rows = [line for line in log_file.read_text().splitlines() if line.startswith('| ')]
    assert rows[1].startswith('| dog') and 'nan' in rows[1]
    assert rows[2].startswith('| cat') and '| 1.0' in rows[2]


def test_iou_thrs_kept_as_given(ann_file, log_file):
    # MMDetection keeps iou_thrs as given (a list stays a list).
    metric = CocoMetric(ann_file=ann_file, iou_thrs=[0.5, 0.75])
    assert metric.iou_thrs == [0.5, 0.75]
    results = _run(metric, [_sample(1), _sample(2)])
    assert metric.iou_thrs == [0.5, 0.75]
    assert results['coco/bbox_mAP'] == results['coco/bbox_mAP_75'] == 1.0
    assert isinstance(CocoMetric(iou_thrs=0.5).iou_thrs, float)
    np.testing.assert_allclose(CocoMetric().iou_thrs, np.linspace(0.5, 0.95, 10))
    with pytest.raises(ValueError, match='iou_thrs'):
        CocoMetric(iou_thrs=[0.5, 1.5])


def test_gt_json_written_without_ann_file(tmp_path, log_file):
    # without ann_file MMDetection writes <prefix>.gt.json.
    prefix = tmp_path / 'eval' / 'run'
    samples = [_sample(1, with_gt=True), _sample(2, with_gt=True)]
    assert _run(CocoMetric(outfile_prefix=str(prefix)), samples)['coco/bbox_mAP'] == 1.0
    written = json.loads((tmp_path / 'eval' / 'run.gt.json').read_text())
    assert written['categories'] == [dict(id=i, name=n) for i, n in enumerate(CLASSES)]
    assert [img['id'] for img in written['images']] == [1, 2]
    assert [(a['image_id'], a['category_id'], a['bbox']) for a in written['annotations']] == [
        (1, CAT, [10, 10, 40, 40]), (1, DOG, [60, 60, 30, 30]), (2, CAT, [0, 0, 20, 20])]
    assert (tmp_path / 'eval' / 'run.bbox.json').is_file()


def test_ann_file_none_gt_loaded_after_resize_is_not_unscaled(log_file):
    # MMDetection's COCO test pipeline loads annotations after Resize: the gt
    # boxes stay in original pixels and must not be divided by scale_factor.
    from detlab.datasets.transforms import LoadAnnotations, PackDetInputs, Resize
    samples = []
    for img_id in GT:
        results = dict(img=np.zeros((SIZE, SIZE, 3), np.uint8), img_shape=(SIZE, SIZE),
                       ori_shape=(SIZE, SIZE), img_id=img_id,
                       instances=[dict(bbox=list(b[:4]), bbox_label=b[4], ignore_flag=0)
                                  for b in GT[img_id]])
        for order in ([Resize(scale_factor=2.0), LoadAnnotations()] if img_id == 1 else
                      [LoadAnnotations(), Resize(scale_factor=2.0)]):
            results = order(results)
        packed = PackDetInputs()(results)['data_samples']
        packed.pred_instances = InstanceData(**_sample(img_id)['pred_instances'])
        samples.append(packed.to_dict())
    assert _run(CocoMetric(), samples)['coco/bbox_mAP'] == 1.0
