"""VOCDataset on XML written here; the dataset wrappers over it."""
from pathlib import Path

import pytest
from mmengine.config import Config

from detlab.datasets import VOCDataset
from detlab.registry import DATASETS
from helpers import VOC2007, write_voc

REPO_ROOT = Path(__file__).resolve().parents[2]
VOC2012 = {'2012_000001': ((64, 48), [('bird', 0, 5, 6, 40, 30)])}


def build(root, year='VOC2007', **kwargs):
    cfg = dict(type='VOCDataset', data_root=str(root),
               ann_file=f'{year}/ImageSets/Main/trainval.txt',
               data_prefix=dict(sub_data_root=f'{year}/'))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_voc_xml_boxes_labels_and_ignores(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    dataset = build(tmp_path, test_mode=True)
    classes = VOCDataset.METAINFO['classes']
    assert len(classes) == 20 and dataset.metainfo['dataset_type'] == 'VOC2007'
    first = dataset.get_data_info(0)
    assert first['img_id'] == '000001' and (first['width'], first['height']) == (100, 80)
    assert first['img_path'] == str(tmp_path / 'VOC2007' / 'JPEGImages' / '000001.jpg')
    # 1-based VOC corners minus one; difficult -> ignored; unknown names left out;
    # the cat reaching past the 100x80 image clipped to it
    assert first['instances'] == [
        dict(ignore_flag=0, bbox=[10, 20, 49, 59], bbox_label=classes.index('dog')),
        dict(ignore_flag=1, bbox=[0, 0, 29, 39], bbox_label=classes.index('person')),
        dict(ignore_flag=0, bbox=[69, 49, 100, 79], bbox_label=classes.index('cat')),
    ]
    second = dataset.get_data_info(1)
    assert (second['width'], second['height']) == (60, 40)  # from the JPEG itself
    assert dataset.get_cat_ids(1) == [classes.index('car')]
    assert len(dataset) == 3


def test_voc_through_the_loading_pipeline(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
                dict(type='PackDetInputs')]
    sample = build(tmp_path, test_mode=True, pipeline=pipeline)[0]['data_samples']
    # PackDetInputs puts ignored (difficult) boxes apart from the ones trained on
    assert sample.gt_instances.bboxes.tolist() == [[10, 20, 49, 59], [69, 49, 100, 79]]
    assert sample.ignored_instances.bboxes.tolist() == [[0, 0, 29, 39]]


def test_voc_filters_and_bbox_min_size(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    dataset = build(tmp_path, filter_cfg=dict(filter_empty_gt=True, min_size=45,
                                              bbox_min_size=32))
    assert [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))] == ['000001']
    # boxes under 32 px on a side are ignored, not dropped: the cat is 30 px high
    assert [inst['ignore_flag'] for inst in dataset.get_data_info(0)['instances']] == [0, 1, 1]


def test_voc07_plus_12_through_concat_and_repeat(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    write_voc(tmp_path, 'VOC2012', VOC2012)
    parts = [dict(type='VOCDataset', data_root=str(tmp_path),
                  ann_file=f'{year}/ImageSets/Main/trainval.txt',
                  data_prefix=dict(sub_data_root=f'{year}/'), test_mode=True)
             for year in ('VOC2007', 'VOC2012')]
    concat = DATASETS.build(dict(type='ConcatDataset', datasets=parts,
                                 ignore_keys=['dataset_type']))
    assert len(concat) == 4
    assert concat.metainfo['classes'] == VOCDataset.METAINFO['classes']
    assert concat.metainfo['cumulative_sizes'] == [3, 4]
    assert concat.get_data_info(3)['img_id'] == '2012_000001'
    assert concat.get_dataset_source(3) == 1 and concat.get_dataset_source(0) == 0
    # without ignore_keys the years differ: one metainfo per dataset, as MMDetection
    separate = DATASETS.build(dict(type='ConcatDataset', datasets=parts))
    assert [meta['dataset_type'] for meta in separate.metainfo] == ['VOC2007', 'VOC2012']
    repeated = DATASETS.build(dict(type='RepeatDataset', times=3, dataset=dict(
        type='ConcatDataset', datasets=parts, ignore_keys='dataset_type')))
    assert len(repeated) == 12 and repeated.get_data_info(7)['img_id'] == '2012_000001'


def test_class_balanced_dataset_repeats_rare_classes(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    balanced = DATASETS.build(dict(
        type='ClassBalancedDataset', oversample_thr=0.5,
        dataset=dict(type='VOCDataset', data_root=str(tmp_path),
                     ann_file='VOC2007/ImageSets/Main/trainval.txt',
                     data_prefix=dict(sub_data_root='VOC2007/'), test_mode=True)))
    # each class is in 1 of 3 images (f = 1/3 < 0.5): images with one repeat ceil(sqrt(1.5))
    ids = [balanced.get_data_info(i)['img_id'] for i in range(len(balanced))]
    assert ids.count('000001') == 2 and ids.count('000002') == 2 and ids.count('000003') == 1


def test_missing_id_list_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='trainval.txt'):
        build(tmp_path)


def test_voc0712_base_config_builds_its_datasets(tmp_path):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    write_voc(tmp_path, 'VOC2012', VOC2012)
    (tmp_path / 'VOC2007/ImageSets/Main/test.txt').write_text('000001\n000003\n')
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/_base_/datasets/voc0712.py'))
    train = cfg.train_dataloader.dataset
    for part in train.dataset.datasets:
        part.data_root = str(tmp_path)
    train.dataset.datasets[0].filter_cfg = dict(filter_empty_gt=True, min_size=32)
    repeated = DATASETS.build(train)
    # 2007: 000003 has no object -> filtered; 2012: its one image
    assert len(repeated) == 3 * 3
    assert repeated.metainfo['classes'] == VOCDataset.METAINFO['classes']
    test_set = DATASETS.build(dict(cfg.val_dataloader.dataset, data_root=str(tmp_path)))
    assert len(test_set) == 2 and test_set.metainfo['dataset_type'] == 'VOC2007'
    assert cfg.train_dataloader.batch_sampler.type == 'AspectRatioBatchSampler'
