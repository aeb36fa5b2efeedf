"""HTC's semantic segmentation data: the stuff PNG found through CocoDataset's
``data_prefix['seg']`` and ``seg_map_suffix``, loaded by LoadAnnotations(with_seg=True),
resized and flipped with the image, packed as ``gt_sem_seg`` and padded with 255 by the
data preprocessor; SegRescale."""
import json

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config

from detlab.registry import DATASETS, MODELS, TRANSFORMS
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT

IMG_H, IMG_W = 40, 60


def stuff_map() -> np.ndarray:
    """(40, 60) uint8 classes: 10-pixel vertical bands 0..5, a 255 (unlabelled) corner."""
    seg = np.repeat((np.arange(IMG_W) // 10).astype(np.uint8)[None], IMG_H, axis=0)
    seg[:5, :5] = 255
    return seg


def write_dataset(root):
    (root / 'train2017').mkdir()
    (root / 'stuffthingmaps/train2017').mkdir(parents=True)
    rng = np.random.default_rng(0)
    mmcv.imwrite(rng.integers(0, 255, (IMG_H, IMG_W, 3), dtype=np.uint8),
                 str(root / 'train2017/000000000001.jpg'))
    mmcv.imwrite(stuff_map(), str(root / 'stuffthingmaps/train2017/000000000001.png'))
    (root / 'annotations').mkdir()
    (root / 'annotations/instances_train2017.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='000000000001.jpg', width=IMG_W, height=IMG_H)],
        annotations=[dict(id=1, image_id=1, category_id=1, bbox=[10, 10, 20, 20], area=400,
                          iscrowd=0, segmentation=[[10, 10, 30, 10, 30, 30, 10, 30]])],
        categories=[dict(id=1, name='person')])))


def htc_config():
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/htc/htc_r50_fpn_1x_coco.py'))
    adopt_default_scope(cfg)
    return cfg


def test_htc_train_pipeline_packs_the_stuff_map_resized_with_the_image(tmp_path):
    write_dataset(tmp_path)
    cfg = htc_config()
    dataset_cfg = cfg.train_dataloader.dataset
    assert dataset_cfg.data_prefix == dict(img='train2017/', seg='stuffthingmaps/train2017/')
    dataset = DATASETS.build(dict(dataset_cfg, data_root=str(tmp_path),
                                  metainfo=dict(classes=('person', ))))
    assert dataset.get_data_info(0)['seg_map_path'] == str(
        tmp_path / 'stuffthingmaps/train2017/000000000001.png')
    np.random.seed(1)  # RandomFlip(prob=0.5) draws 0.417, then 0.720: one flip, one not
    packed = [dataset[0] for _ in range(2)]
    flips = set()
    for item in packed:
        sample = item['data_samples']
        h, w = sample.img_shape
        assert (h, w) == (800, 1200) and item['inputs'].shape[-2:] == (h, w)
        sem_seg = sample.gt_sem_seg.sem_seg
        assert sem_seg.shape == (1, h, w) and sem_seg.dtype == torch.uint8
        assert sample.gt_sem_seg.ignore_index == 255  # LoadAnnotations' ignore_index
        expected = mmcv.imresize(stuff_map(), (w, h), interpolation='nearest')
        if sample.flip:
            expected = mmcv.imflip(expected)
        flips.add(sample.flip)
        assert np.array_equal(sem_seg[0].numpy(), expected)
    assert flips == {True, False}

    # The model's data preprocessor (pad_seg=True) pads the maps with 255 to the batch.
    preprocessor = MODELS.build(cfg.model.data_preprocessor)
    assert preprocessor.pad_seg
    batch = preprocessor(dict(inputs=[packed[0]['inputs']],
                              data_samples=[packed[0]['data_samples']]), training=True)
    padded = batch['data_samples'][0].gt_sem_seg.sem_seg
    assert padded.shape == (1, 800, 1216)
    assert (padded[:, :, 1200:] == 255).all()


def test_seg_rescale_uses_nearest_neighbours():
    seg = stuff_map()
    rescale = TRANSFORMS.build(dict(type='SegRescale', scale_factor=1 / 8))
    out = rescale(dict(gt_seg_map=seg.copy()))['gt_seg_map']
    assert out.shape == (5, 8)
    assert set(np.unique(out)) <= set(np.unique(seg))
    assert np.array_equal(out, mmcv.imrescale(seg, 1 / 8, interpolation='nearest'))
    same = TRANSFORMS.build(dict(type='SegRescale'))(dict(gt_seg_map=seg.copy()))
    assert np.array_equal(same['gt_seg_map'], seg)
    assert repr(rescale) == 'SegRescale(scale_factor=0.125, backend=cv2)'
    with pytest.raises(KeyError, match='with_seg=True'):
        rescale(dict(img_path='a.jpg'))
    with pytest.raises(ValueError, match='backend'):
        TRANSFORMS.build(dict(type='SegRescale', backend='pil'))
