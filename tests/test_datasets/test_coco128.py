"""CocoDataset and the training pipeline on real COCO images (../shared/data/coco128)."""
import json

import numpy as np
import pytest
import torch

from detlab.datasets import ClassOrderWarning
from detlab.registry import DATASETS

ANN_FILE = 'annotations/instances_train2017.json'
IMG_PREFIX = 'images/train2017/'


def build(coco128, **kwargs):
    cfg = dict(type='CocoDataset', data_root=str(coco128), ann_file=ANN_FILE,
               data_prefix=dict(img=IMG_PREFIX))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_parses_every_box_with_contiguous_labels(coco128):
    raw = json.loads((coco128 / ANN_FILE).read_text())
    dataset = build(coco128, test_mode=True)
    assert len(dataset) == len(raw['images'])
    assert len(dataset.cat_ids) == 80 and max(dataset.cat_ids) == 90  # COCO ids have gaps
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    instances = [inst for info in infos for inst in info['instances']]
    assert len(instances) == len(raw['annotations'])
    labels = np.array([inst['bbox_label'] for inst in instances])
    assert labels.min() >= 0 and labels.max() < 80
    # label -> category name round trip for every annotation
    cat_names = {cat['id']: cat['name'] for cat in raw['categories']}
    classes = dataset.metainfo['classes']
    by_ann = sorted(raw['annotations'], key=lambda a: (a['image_id'], a['id']))
    names = [classes[inst['bbox_label']] for info in sorted(infos, key=lambda i: i['img_id'])
             for inst in info['instances']]
    assert names == [cat_names[a['category_id']] for a in by_ann]
    for info in infos:
        boxes = np.array([inst['bbox'] for inst in info['instances']]).reshape(-1, 4)
        assert np.all(boxes[:, 2:] > boxes[:, :2])
        assert np.all(boxes[:, 2] <= info['width'] + 0.01)
        assert np.all(boxes[:, 3] <= info['height'] + 0.01)


def test_filter_drops_images_without_boxes(coco128):
    raw = json.loads((coco128 / ANN_FILE).read_text())
    with_boxes = {ann['image_id'] for ann in raw['annotations']}
    dataset = build(coco128, filter_cfg=dict(filter_empty_gt=True, min_size=32))
    kept = {dataset.get_data_info(i)['img_id'] for i in range(len(dataset))}
    assert kept == with_boxes


def test_subset_of_classes(coco128):
    # MMDetection labels in the file's category order: person (id 1) before dog (id 18)
    with pytest.warns(ClassOrderWarning, match="'person', 'dog'"):
        dataset = build(coco128, metainfo=dict(classes=('dog', 'person')),
                        filter_cfg=dict(filter_empty_gt=True))
    assert dataset.cat_ids == [1, 18]
    assert dataset.metainfo['classes'] == ('person', 'dog')
    assert len(dataset) > 0
    for i in range(len(dataset)):
        assert set(dataset.get_cat_ids(i)) <= {0, 1}


def test_training_pipeline_on_real_images(coco128):
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(320, 256), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    dataset = build(coco128, pipeline=pipeline, filter_cfg=dict(filter_empty_gt=True),
                    indices=8)
    for i in range(len(dataset)):
        packed = dataset[i]
        inputs, sample = packed['inputs'], packed['data_samples']
        # the grey image of coco128 also comes out with 3 channels
        assert inputs.dtype == torch.uint8 and inputs.shape[0] == 3
        assert tuple(inputs.shape[1:]) == sample.img_shape
        assert max(sample.img_shape) <= 320 and min(sample.img_shape) <= 256
        boxes = sample.gt_instances.bboxes
        assert boxes.dtype == torch.float32 and len(boxes) == len(sample.gt_instances.labels)
        assert torch.all(boxes[:, 0::2] <= sample.img_shape[1])
        assert torch.all(boxes[:, 1::2] <= sample.img_shape[0])


def test_grey_image_loads_as_three_equal_channels(coco128):
    from PIL import Image

    from detlab.registry import TRANSFORMS
    # Reading only the JPEG header is enough to find the single-channel image.
    grey = [path for path in sorted((coco128 / IMG_PREFIX).glob('*.jpg'))
            if Image.open(path).mode == 'L']
    assert grey, 'coco128 is documented to hold one grey image'
    results = TRANSFORMS.build(dict(type='LoadImageFromFile'))(dict(img_path=str(grey[0])))
    img = results['img']
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    assert results['ori_shape'] == results['img_shape'] == img.shape[:2]
