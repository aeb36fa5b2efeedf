"""COCO box evaluation: pycocotools' COCOeval against detlab's fast backend.

The same detections (5,000 images, 80 classes with COCO's gapped ids, up to
100 detections per image, generated deterministically from a seed: jittered
copies of the ground truth, some relabelled, plus false positives) are
evaluated by ``evaluate_bbox(backend='pycocotools')`` and
``evaluate_bbox(backend='fast')``, starting from the same detection arrays:
the pycocotools time includes building its results list and ``loadRes``, as
CocoMetric pays them. The script checks that the 12 summary numbers agree to
1e-6 (it exits with status 1 otherwise) and prints both times and the ratio.

    python benchmarks/bench_eval.py [--images 5000] [--seed 0]
"""
import argparse
import time

import numpy as np

from detlab.datasets.metainfo import COCO_CLASSES
from detlab.evaluation.functional import (COCO_STAT_NAMES, DetectionArrays, coco_from_dict,
                                          evaluate_bbox)

#: COCO's 80 category ids (1..90 with gaps).
COCO_CAT_IDS = [c for c in range(1, 91) if c not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
MAX_DETS_PER_IMAGE = 100
TOLERANCE = 1e-6


def make_dataset(num_images: int, seed: int):
    """Ground truth (a COCO) and detections (arrays), deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    gt_per_image = rng.integers(0, 16, num_images)
    num_gts = int(gt_per_image.sum())
    gt_image = np.repeat(np.arange(1, num_images + 1), gt_per_image)
    sizes = np.exp(rng.uniform(np.log(4), np.log(400), (num_gts, 2)))  # small..large
    corners = rng.uniform(0, 1, (num_gts, 2)) * (np.array([640, 480]) - sizes).clip(0)
    gt_boxes = np.hstack([corners, sizes])
    gt_cat = rng.choice(COCO_CAT_IDS, num_gts)
    crowd = rng.random(num_gts) < 0.01
    area = sizes.prod(axis=1) * rng.uniform(0.4, 1.0, num_gts)  # like segment areas
    annotations = [dict(id=i + 1, image_id=int(img), category_id=int(cat), bbox=box.tolist(),
                        area=float(a), iscrowd=int(c))
                   for i, (img, cat, box, a, c) in enumerate(
                       zip(gt_image, gt_cat, gt_boxes, area, crowd))]
    images = [dict(id=i, width=640, height=480) for i in range(1, num_images + 1)]
    categories = [dict(id=c, name=n) for c, n in zip(COCO_CAT_IDS, COCO_CLASSES)]
    coco_gt = coco_from_dict(dict(images=images, annotations=annotations,
                                  categories=categories))

    # Detections: up to 3 jittered copies of each gt box, then random boxes,
    # at most MAX_DETS_PER_IMAGE per image.
    copies = rng.integers(0, 4, num_gts)
    src = np.repeat(np.arange(num_gts), copies)
    jitter = rng.normal(0, 0.05, (len(src), 4)) * np.repeat(sizes[src], 2, axis=1)
    det_boxes = gt_boxes[src] + jitter
    det_cat = np.where(rng.random(len(src)) < 0.85, gt_cat[src],
                       rng.choice(COCO_CAT_IDS, len(src)))
    det_image = gt_image[src]
    extra = (MAX_DETS_PER_IMAGE - np.bincount(det_image, minlength=num_images + 1)[1:]).clip(0)
    extra = rng.integers(0, extra + 1)
    fp_image = np.repeat(np.arange(1, num_images + 1), extra)
    fp_sizes = np.exp(rng.uniform(np.log(4), np.log(300), (len(fp_image), 2)))
    fp_boxes = np.hstack([rng.uniform(0, 1, (len(fp_image), 2)) * (640 - fp_sizes).clip(0),
                          fp_sizes])
    image_ids = np.concatenate([det_image, fp_image])
    scores = np.concatenate([rng.uniform(0.2, 1.0, len(src)), rng.uniform(0, 0.7, len(fp_image))])
    order = np.lexsort((-scores, image_ids))
    rank = np.arange(len(order)) - np.searchsorted(image_ids[order], image_ids[order])
    keep = order[rank < MAX_DETS_PER_IMAGE]  # the top 100 of each image, as a detector gives
    detections = DetectionArrays(
        image_ids=image_ids[keep].astype(np.int64),
        category_ids=np.concatenate([det_cat, rng.choice(COCO_CAT_IDS,
                                                         len(fp_image))])[keep].astype(np.int64),
        bboxes=np.vstack([det_boxes, fp_boxes])[keep].astype(np.float32).astype(np.float64),
        scores=scores[keep].astype(np.float32).astype(np.float64))
    return coco_gt, detections


def timed(coco_gt, detections, backend: str):
    start = time.perf_counter()
    result = evaluate_bbox(coco_gt, detections, COCO_CAT_IDS, backend=backend)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--images', type=int, default=5000)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    coco_gt, detections = make_dataset(args.images, args.seed)
    print(f'{args.images} images, {len(coco_gt.dataset["annotations"])} gt boxes, '
          f'{len(detections.scores)} detections, {len(COCO_CAT_IDS)} classes')
    fast, fast_s = timed(coco_gt, detections, 'fast')
    slow, slow_s = timed(coco_gt, detections, 'pycocotools')
    print(f'{"stat":<12}{"pycocotools":>14}{"fast":>14}')
    for name, a, b in zip(COCO_STAT_NAMES, slow.stats, fast.stats):
        print(f'{name:<12}{a:>14.9f}{b:>14.9f}')
    worst = float(np.abs(slow.stats - fast.stats).max())
    print(f'max |difference| of the 12 numbers: {worst:.3g} (tolerance {TOLERANCE})')
    print(f'pycocotools {slow_s:.2f} s, fast {fast_s:.2f} s, '
          f'fast is {slow_s / fast_s:.1f}x faster')
    if worst > TOLERANCE:
        raise SystemExit(1)


if __name__ == '__main__':
    main()
