"""Generated COCO ground truth and detections shared by the evaluation tests."""
import numpy as np

from detlab.evaluation.functional import coco_from_dict


def generated_case(seed, num_images=25, num_cats=5, crowd_frac=0.1, score_ties=False,
                   first_ann_id=1, noise_dets=20):
    """A random COCO ground truth (gapped, unsorted category ids, crowds, gt areas
    unlike w*h) and detections perturbed from it, plus random false positives."""
    rng = np.random.default_rng(seed)
    cat_ids = [int(c) for c in rng.choice(np.arange(1, 100), num_cats, replace=False)]
    images, anns, dets = [], [], []
    ann_id = first_ann_id

    def score():
        return float(np.round(rng.random(), 1) if score_ties else rng.random())

    for img in range(num_images):
        img_id = 3 * img + 7
        images.append(dict(id=img_id, width=640, height=480))
        for _ in range(rng.integers(0, 8)):
            w, h = rng.uniform(2, 200, 2)
            x, y = rng.uniform(0, 400, 2)
            cat = cat_ids[rng.integers(num_cats)]
            anns.append(dict(id=ann_id, image_id=img_id, category_id=cat, bbox=[x, y, w, h],
                             area=w * h * rng.uniform(0.5, 1.0),
                             iscrowd=int(rng.random() < crowd_frac)))
            ann_id += 1
            for _ in range(rng.integers(0, 4)):
                det_cat = cat if rng.random() < 0.8 else cat_ids[rng.integers(num_cats)]
                dets.append(dict(image_id=img_id, category_id=det_cat, score=score(),
                                 bbox=[x + rng.normal(0, 5), y + rng.normal(0, 5),
                                       w * rng.uniform(0.7, 1.3), h * rng.uniform(0.7, 1.3)]))
        for _ in range(rng.integers(0, noise_dets)):
            w, h = rng.uniform(2, 200, 2)
            x, y = rng.uniform(0, 400, 2)
            dets.append(dict(image_id=img_id, category_id=cat_ids[rng.integers(num_cats)],
                             bbox=[x, y, w, h], score=score()))
    categories = [dict(id=c, name=f'class{c}') for c in cat_ids]
    coco_gt = coco_from_dict(dict(images=images, annotations=anns, categories=categories))
    return coco_gt, dets, cat_ids
