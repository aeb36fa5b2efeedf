"""The COCO base config's train and test pipelines over every coco128 image."""
import copy

import torch
from mmengine.config import Config

from detlab.registry import DATASETS

from helpers import REPO_ROOT

ANN_FILE = 'annotations/instances_train2017.json'
IMG_PREFIX = 'images/train2017/'


def base_pipelines():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/datasets/coco_detection.py'))
    return cfg.train_pipeline, cfg.test_pipeline


def build(coco128, pipeline, **kwargs):
    return DATASETS.build(dict(type='CocoDataset', data_root=str(coco128), ann_file=ANN_FILE,
                               data_prefix=dict(img=IMG_PREFIX), pipeline=copy.deepcopy(pipeline),
                               **kwargs))


def check_sample(packed, box_frame='img_shape'):
    """Image and metainfo agree; every box lies inside the image it refers to.

    The train pipeline resizes boxes with the image (``img_shape``); the test
    pipeline loads them after Resize, in the original image (``ori_shape``).
    """
    inputs, sample = packed['inputs'], packed['data_samples']
    assert inputs.dtype == torch.uint8 and inputs.shape[0] == 3
    height, width = sample.img_shape
    assert tuple(inputs.shape[1:]) == (height, width)
    # 1333x800 with the aspect ratio kept
    assert max(height, width) <= 1333 and min(height, width) <= 800
    assert max(height, width) == 1333 or min(height, width) == 800
    height, width = sample.metainfo[box_frame]
    boxes = torch.cat([sample.gt_instances.bboxes, sample.ignored_instances.bboxes])
    assert boxes.dtype == torch.float32 and boxes.shape[1] == 4
    assert torch.all(boxes[:, 0::2] >= 0) and torch.all(boxes[:, 0::2] <= width)
    assert torch.all(boxes[:, 1::2] >= 0) and torch.all(boxes[:, 1::2] <= height)
    assert torch.all(boxes[:, 2:] >= boxes[:, :2])
    return len(boxes)


def test_base_config_pipelines_over_every_image(coco128):
    train_pipeline, test_pipeline = base_pipelines()
    train = build(coco128, train_pipeline, filter_cfg=None)
    test = build(coco128, test_pipeline, test_mode=True)
    assert len(train) == len(test) == 128
    n_boxes = sum(check_sample(train[i]) for i in range(len(train)))
    assert n_boxes > 900  # coco128 holds 929 boxes
    for i in range(len(test)):
        packed = test[i]
        check_sample(packed, box_frame='ori_shape')
        assert 'flip' not in packed['data_samples'].metainfo  # the test pipeline never flips
