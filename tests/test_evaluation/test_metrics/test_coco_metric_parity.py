"""CocoMetric's numbers equal pycocotools' COCOeval run directly, for both backends.

Detections come from perturbing real ground truth (../shared/data/coco128,
skipped where absent) and generated ground truth.
"""
import contextlib
import io
import json

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detlab.evaluation import CocoMetric
from detlab.evaluation.functional import COCO_STAT_NAMES
from detlab.structures import DetDataSample
from evaluation_cases import generated_case

COCO128_ANN = 'annotations/instances_train2017.json'


def perturbed_detections(coco_gt, seed):
    """Jittered copies of most gt boxes (some relabelled), plus random false positives."""
    rng = np.random.default_rng(seed)
    cat_ids = coco_gt.getCatIds()
    dets = []
    for img_id in coco_gt.getImgIds():
        info = coco_gt.imgs[img_id]
        for ann in coco_gt.imgToAnns.get(img_id, []):
            if rng.random() < 0.15:
                continue  # missed
            x, y, w, h = ann['bbox']
            cat = ann['category_id'] if rng.random() < 0.9 else int(rng.choice(cat_ids))
            dets.append(dict(image_id=img_id, category_id=cat, score=float(rng.random()),
                             bbox=[x + rng.normal(0, 0.08 * w), y + rng.normal(0, 0.08 * h),
                                   w * rng.uniform(0.8, 1.2), h * rng.uniform(0.8, 1.2)]))
        for _ in range(rng.integers(0, 6)):
            w, h = rng.uniform(4, info['width'] / 2), rng.uniform(4, info['height'] / 2)
            dets.append(dict(image_id=img_id, category_id=int(rng.choice(cat_ids)),
                             score=float(rng.random() * 0.5),
                             bbox=[rng.uniform(0, info['width'] - w),
                                   rng.uniform(0, info['height'] - h), w, h]))
    return dets


def direct_cocoeval_stats(coco_gt, dets):
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(dets), 'bbox')
    coco_eval.params.maxDets = [100, 300, 1000]  # MMDetection's proposal_nums
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval.stats


def samples_from(dets, coco_gt, cat_ids):
    """DetDataSample dicts with x1, y1, x2, y2 predictions; labels index ``cat_ids``."""
    label_of = {cat: label for label, cat in enumerate(cat_ids)}
    samples = []
    for img_id in coco_gt.getImgIds():
        mine = [d for d in dets if d['image_id'] == img_id]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in mine)],
                             dtype=torch.float32).reshape(-1, 4)
        sample = DetDataSample(metainfo=dict(
            img_id=img_id, ori_shape=(coco_gt.imgs[img_id]['height'],
                                      coco_gt.imgs[img_id]['width'])))
        sample.pred_instances = InstanceData(
            bboxes=boxes, scores=torch.tensor([d['score'] for d in mine], dtype=torch.float32),
            labels=torch.tensor([label_of[d['category_id']] for d in mine], dtype=torch.long))
        samples.append(sample.to_dict())
    return samples


def as_json_float32(dets, samples):
    """The detections as the metric sees them: boxes and scores through float32."""
    out = []
    for sample in samples:
        pred = sample['pred_instances']
        for box, score, label in zip(pred['bboxes'].double().tolist(),
                                     pred['scores'].double().tolist(), pred['labels'].tolist()):
            out.append(dict(image_id=sample['img_id'], score=score, category_id=label,
                            bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]]))
    return out


@pytest.fixture(autouse=True)
def _logger():
    MMLogger.get_instance('test_coco_metric_parity')


@pytest.mark.parametrize('backend', ['pycocotools', 'fast'])
def test_coco128_perturbed_ground_truth(coco128, backend):
    ann_file = str(coco128 / COCO128_ANN)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(ann_file)
    classes = [c['name'] for c in coco_gt.dataset['categories']]
    cat_ids = coco_gt.getCatIds(catNms=classes)
    samples = samples_from(perturbed_detections(coco_gt, seed=0), coco_gt, cat_ids)
    expected = as_json_float32(perturbed_detections(coco_gt, seed=0), samples)
    for det in expected:
        det['category_id'] = cat_ids[det['category_id']]
    reference = direct_cocoeval_stats(coco_gt, expected)
    metric = CocoMetric(ann_file=ann_file, metric_items=list(COCO_STAT_NAMES),
                        eval_backend=backend)
    metric.dataset_meta = dict(classes=classes)
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    got = np.array([results[f'coco/bbox_{name}'] for name in COCO_STAT_NAMES])
    np.testing.assert_allclose(got, np.round(reference, 3), atol=1e-9)
    assert 0.1 < reference[0] < 0.9  # a meaningful, non-trivial mAP


@pytest.mark.parametrize('backend', ['pycocotools', 'fast'])
def test_generated_ground_truth_without_ann_file(tmp_path, backend):
    # Gt from the samples (ann_file=None): the metric builds categories 0..K-1.
    coco_gt, dets, cat_ids = generated_case(21, num_images=30, crowd_frac=0.0)
    for ann in coco_gt.dataset['annotations']:  # the metric derives areas from the boxes
        ann['area'] = ann['bbox'][2] * ann['bbox'][3]
    samples = samples_from(dets, coco_gt, cat_ids)
    label_of = {cat: label for label, cat in enumerate(cat_ids)}
    for sample in samples:
        anns = coco_gt.imgToAnns.get(sample['img_id'], [])
        sample['gt_instances'] = dict(
            bboxes=torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)],
                                dtype=torch.float64).reshape(-1, 4),
            labels=torch.tensor([label_of[a['category_id']] for a in anns], dtype=torch.long))
    metric = CocoMetric(metric_items=list(COCO_STAT_NAMES), eval_backend=backend,
                        outfile_prefix=str(tmp_path / 'gen'))
    metric.dataset_meta = dict(classes=[f'class{c}' for c in cat_ids])
    metric.process({}, samples)
    results = metric.evaluate(len(samples))
    with contextlib.redirect_stdout(io.StringIO()):
        written_gt = COCO(str(tmp_path / 'gen.gt.json'))
    expected = json.loads((tmp_path / 'gen.bbox.json').read_text())
    reference = direct_cocoeval_stats(written_gt, expected)
    got = np.array([results[f'coco/bbox_{name}'] for name in COCO_STAT_NAMES])
    np.testing.assert_allclose(got, np.round(reference, 3), atol=1e-9)
    assert 0.05 < reference[0] < 0.9


def test_proposal_metrics(tmp_path):
    coco_gt, dets, cat_ids = generated_case(4, num_images=20, crowd_frac=0.0)
    ann_file = tmp_path / 'gt.json'
    ann_file.write_text(json.dumps(coco_gt.dataset))
    samples = samples_from(dets, coco_gt, cat_ids)

    def run(**kwargs):
        metric = CocoMetric(ann_file=str(ann_file), **kwargs)
        metric.dataset_meta = dict(classes=[f'class{c}' for c in cat_ids])
        metric.process({}, samples)
        return metric.evaluate(len(samples))

    # 'proposal': COCOeval with categories pooled, MMDetection's six AR keys.
    pooled = {backend: run(metric='proposal', eval_backend=backend)
              for backend in ('pycocotools', 'fast')}
    assert pooled['fast'] == pooled['pycocotools']
    assert list(pooled['fast']) == ['coco/AR@100', 'coco/AR@300', 'coco/AR@1000',
                                    'coco/AR_s@1000', 'coco/AR_m@1000', 'coco/AR_l@1000']
    by_class = run(metric='bbox', metric_items=['AR@100'])['coco/bbox_AR@100']
    assert pooled['fast']['coco/AR@100'] != by_class  # pooling changes the matching
    # 'proposal_fast': eval_recalls over the top n boxes, mean over iou_thrs.
    fast = run(metric='proposal_fast', proposal_nums=(1, 10, 100), iou_thrs=[0.5])
    recalls = [fast[f'coco/AR@{n}'] for n in (1, 10, 100)]
    assert recalls == sorted(recalls) and 0 < recalls[0] < recalls[-1] <= 1
