"""CocoMetric(metric=['bbox', 'segm']) against pycocotools' COCOeval; masks in result files."""
import contextlib
import io
import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from detlab.evaluation.functional import COCO_STAT_NAMES, evaluate_segm, load_coco
from detlab.evaluation.metrics import CocoMetric, DumpDetResults
from detlab.evaluation.metrics.dump_det_results import load_det_results
from detlab.structures.mask import mask2bbox

HEIGHT, WIDTH = 96, 128
CAT_IDS = [3, 7, 11]


def ellipse(rng) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    centre = (int(rng.integers(10, WIDTH - 10)), int(rng.integers(10, HEIGHT - 10)))
    axes = (int(rng.integers(3, 30)), int(rng.integers(3, 25)))
    cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    return mask


def perturbed(mask: np.ndarray, rng) -> np.ndarray:
    """The mask shifted by up to 3 pixels, then dilated or eroded (or neither)."""
    dx, dy = rng.integers(-3, 4, 2)
    moved = np.roll(np.roll(mask, int(dy), axis=0), int(dx), axis=1)
    kernel = np.ones((3, 3), np.uint8)
    choice = rng.integers(3)
    if choice == 1:
        moved = cv2.dilate(moved, kernel)
    elif choice == 2:
        moved = cv2.erode(moved, kernel)
    return moved


def segmentation(mask: np.ndarray, kind: str):
    """COCO segmentation of a mask as polygons, compressed RLE or uncompressed RLE."""
    if kind == 'polygon':
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        return [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
    rle = mask_util.encode(np.asfortranarray(mask))
    if kind == 'rle':
        return dict(size=rle['size'], counts=rle['counts'].decode())
    # Uncompressed RLE (COCO's crowd format): run lengths in column-major order.
    flat = mask.reshape(-1, order='F')
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]]))
    counts = ([0] if flat[0] else []) + runs.tolist()
    return dict(size=[HEIGHT, WIDTH], counts=counts)


def generated_case(seed=0, num_images=8):
    """COCO ground truth (polygons, RLE, crowd regions as uncompressed RLE) and
    per-image predictions perturbed from it plus false positives."""
    rng = np.random.default_rng(seed)
    images, annotations, predictions = [], [], []
    for index in range(num_images):
        img_id = 10 + 3 * index
        images.append(dict(id=img_id, width=WIDTH, height=HEIGHT, file_name=f'{img_id}.jpg'))
        pred_masks, scores, labels = [], [], []
        for _ in range(int(rng.integers(1, 6))):
            mask = ellipse(rng)
            crowd = rng.random() < 0.15
            kind = 'crowd' if crowd else ('polygon' if rng.random() < 0.5 else 'rle')
            label = int(rng.integers(len(CAT_IDS)))
            gt_mask = mask
            if kind == 'polygon':  # the mask COCO will rasterise from the polygon
                gt_mask = mask_util.decode(mask_util.merge(mask_util.frPyObjects(
                    segmentation(mask, 'polygon'), HEIGHT, WIDTH)))
            x, y, w, h = mask_util.toBbox(mask_util.encode(np.asfortranarray(gt_mask))).tolist()
            annotations.append(dict(
                id=len(annotations) + 1, image_id=img_id, category_id=CAT_IDS[label],
                segmentation=segmentation(mask, kind), bbox=[x, y, w, h],
                area=float(gt_mask.sum()), iscrowd=int(crowd)))
            for _ in range(int(rng.integers(0, 3))):
                pred_masks.append(perturbed(gt_mask, rng))
                scores.append(float(rng.random()))
                labels.append(label if rng.random() < 0.85 else int(rng.integers(len(CAT_IDS))))
        for _ in range(int(rng.integers(0, 4))):  # false positives
            pred_masks.append(ellipse(rng))
            scores.append(float(rng.random()))
            labels.append(int(rng.integers(len(CAT_IDS))))
        masks = torch.from_numpy(np.stack(pred_masks) if pred_masks else
                                 np.zeros((0, HEIGHT, WIDTH), np.uint8)).bool()
        predictions.append(dict(img_id=img_id, ori_shape=(HEIGHT, WIDTH), pred_instances=dict(
            bboxes=mask2bbox(masks), scores=torch.tensor(scores).reshape(-1),
            labels=torch.tensor(labels, dtype=torch.long).reshape(-1), masks=masks)))
    categories = [dict(id=c, name=f'class{c}') for c in CAT_IDS]
    return dict(images=images, annotations=annotations, categories=categories), predictions


def pycocotools_stats(ann_file, predictions, iou_type):
    coco_gt = COCO(ann_file)
    results = []
    for pred in predictions:
        inst = pred['pred_instances']
        for i in range(len(inst['labels'])):
            record = dict(image_id=pred['img_id'], category_id=CAT_IDS[int(inst['labels'][i])],
                          score=float(inst['scores'][i]))
            if iou_type == 'segm':
                record['segmentation'] = mask_util.encode(
                    np.asfortranarray(inst['masks'][i].numpy().astype(np.uint8)))
            else:
                x1, y1, x2, y2 = inst['bboxes'][i].tolist()
                record['bbox'] = [x1, y1, x2 - x1, y2 - y1]
            results.append(record)
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(results), iou_type)
    coco_eval.params.maxDets = [100, 300, 1000]  # MMDetection's proposal_nums
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval.stats


@pytest.fixture(scope='module')
def case(tmp_path_factory):
    dataset, predictions = generated_case()
    ann_file = tmp_path_factory.mktemp('segm') / 'gt.json'
    ann_file.write_text(json.dumps(dataset))
    with contextlib.redirect_stdout(io.StringIO()):
        reference = {t: pycocotools_stats(str(ann_file), predictions, t)
                     for t in ('bbox', 'segm')}
    return str(ann_file), dataset, predictions, reference


def run_metric(predictions, **kwargs):
    metric = CocoMetric(metric=['bbox', 'segm'], metric_items=COCO_STAT_NAMES, **kwargs)
    metric.dataset_meta = dict(classes=[f'class{c}' for c in CAT_IDS])
    metric.process({}, [dict(p) for p in predictions])
    return metric.compute_metrics(metric.results)


@pytest.mark.parametrize('backend', ['pycocotools', 'fast'])
def test_all_twelve_segm_and_bbox_numbers_equal_pycocotools(case, backend, tmp_path):
    ann_file, dataset, predictions, reference = case
    kinds = {type(a['segmentation']).__name__ + str(a['iscrowd'])
             for a in dataset['annotations']}
    assert kinds == {'list0', 'dict0', 'dict1'}  # polygons, RLE and crowd regions
    results = run_metric(predictions, ann_file=ann_file, eval_backend=backend,
                         outfile_prefix=str(tmp_path / 'out'))
    for iou_type in ('bbox', 'segm'):
        for name, value in zip(COCO_STAT_NAMES, reference[iou_type]):
            assert results[f'{iou_type}_{name}'] == round(float(value), 3), (iou_type, name)
    assert results['segm_mAP'] != results['bbox_mAP']  # masks are evaluated as masks
    segm_json = json.loads((tmp_path / 'out.segm.json').read_text())
    assert len(segm_json) == sum(len(p['pred_instances']['labels']) for p in predictions)
    assert isinstance(segm_json[0]['segmentation']['counts'], str)
    # The functional form gives pycocotools' stats to the last bit.
    stats = evaluate_segm(load_coco(ann_file), segm_json, CAT_IDS).stats
    assert np.array_equal(stats, reference['segm'])


def test_ground_truth_from_the_samples_masks(case):
    ann_file, dataset, predictions, reference = case
    by_image = {}
    for ann in dataset['annotations']:
        by_image.setdefault(ann['image_id'], []).append(ann)
    samples = []
    for pred in predictions:
        instances = [dict(bbox=[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                                a['bbox'][1] + a['bbox'][3]],
                          bbox_label=CAT_IDS.index(a['category_id']),
                          ignore_flag=a['iscrowd'], mask=a['segmentation'])
                     for a in by_image.get(pred['img_id'], [])]
        samples.append(dict(pred, instances=instances))
    results = run_metric(samples)
    # The converted ground truth has box areas, so only the all-area numbers must agree.
    for name in ('mAP', 'mAP_50', 'mAP_75', 'AR@100'):
        assert results[f'segm_{name}'] == round(float(reference['segm'][
            COCO_STAT_NAMES.index(name)]), 3), name


def test_segm_without_masks_is_a_clear_error(case):
    ann_file, _, predictions, _ = case
    boxes_only = [dict(p, pred_instances={k: v for k, v in p['pred_instances'].items()
                                          if k != 'masks'}) for p in predictions]
    with pytest.raises(KeyError, match='masks'):
        run_metric(boxes_only, ann_file=ann_file)
    with pytest.raises(KeyError, match='segm'):
        CocoMetric(metric='segmm')


@pytest.mark.parametrize('suffix', ['.pkl', '.json'])
def test_dump_det_results_writes_masks_as_rle(case, tmp_path, suffix):
    _, _, predictions, _ = case
    out = str(tmp_path / f'results{suffix}')
    dump = DumpDetResults(out)
    dump.process({}, [dict(p) for p in predictions[:2]])
    dump.compute_metrics(dump.results)
    records = load_det_results(out)
    masks = records[0]['pred_instances']['masks']
    expected = predictions[0]['pred_instances']['masks']
    assert isinstance(masks, list) and len(masks) == len(expected)
    assert set(masks[0]) == {'size', 'counts'}
    decoded = mask_util.decode([dict(m, counts=m['counts']) for m in masks])
    assert np.array_equal(decoded.transpose(2, 0, 1), expected.numpy().astype(np.uint8))
