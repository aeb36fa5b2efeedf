"""A small COCO-style dataset with bad entries, written for the bad-input and skip tests."""
import json

import cv2
import numpy as np

from detlab.registry import DATASETS

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
            dict(type='PackDetInputs')]
CATEGORIES = [dict(id=1, name='a'), dict(id=2, name='b')]
NUM_GOOD = 4


def good_box(ann_id, img_id):
    return dict(id=ann_id, image_id=img_id, category_id=1, bbox=[2, 2, 10, 10], area=100,
                iscrowd=0)


def write_coco(root, extra_images=(), extra_annotations=()):
    """NUM_GOOD readable 32x24 images with one box each, plus the extras given."""
    (root / 'imgs').mkdir(exist_ok=True)
    images = []
    for img_id in range(1, NUM_GOOD + 1):
        cv2.imwrite(str(root / 'imgs' / f'{img_id}.png'), np.full((24, 32, 3), img_id, np.uint8))
        images.append(dict(id=img_id, file_name=f'{img_id}.png', width=32, height=24))
    annotations = [good_box(img_id, img_id) for img_id in range(1, NUM_GOOD + 1)]
    content = dict(images=images + list(extra_images),
                   annotations=annotations + list(extra_annotations), categories=CATEGORIES)
    (root / 'ann.json').write_text(json.dumps(content))


def build(root, **kwargs):
    cfg = dict(type='CocoDataset', data_root=str(root), ann_file='ann.json',
               data_prefix=dict(img='imgs/'), metainfo=dict(classes=('a', 'b')),
               filter_cfg=dict(filter_empty_gt=True), pipeline=PIPELINE)
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def extra_image(img_id, file_name='5.png'):
    return dict(id=img_id, file_name=file_name, width=32, height=24)


def two_bad_images_skipped_once_an_epoch(root):
    """NUM_GOOD good images and two unreadable ones (indices 4, 5); redraws pick index 0,
    so each bad file fails exactly once an epoch."""
    write_coco(root, [extra_image(5, 'bad.png'), extra_image(6, 'bad2.png')],
               [good_box(9, 5), good_box(10, 6)])
    (root / 'imgs' / 'bad.png').write_bytes(b'garbage')
    (root / 'imgs' / 'bad2.png').write_bytes(b'\x89PNG\r\n\x1a\n\x00\x00')
    dataset = build(root, skip_bad_samples=True)
    dataset._rand_another = lambda: 0
    return dataset
