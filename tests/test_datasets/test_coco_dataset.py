"""CocoDataset on a tiny hand-written COCO file with gapped category ids."""
import json
import warnings

import numpy as np
import pytest

from detlab.datasets import BadSampleWarning, ClassOrderWarning, CocoDataset
from detlab.registry import DATASETS

#: The shared fixture holds sub-pixel and clipped boxes on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::detlab.datasets.BadSampleWarning")

CATEGORIES = [dict(id=1, name='person'), dict(id=3, name='car'), dict(id=90, name='toothbrush')]
IMAGES = [
    dict(id=1, file_name='a.jpg', width=100, height=80),
    dict(id=2, file_name='b.jpg', width=50, height=40),  # only a car and a tiny box
    dict(id=3, file_name='c.jpg', width=20, height=30),  # small image
    dict(id=4, file_name='d.jpg', width=64, height=64),  # no annotations at all
]
ANNOTATIONS = [
    dict(id=1, image_id=1, category_id=90, bbox=[10, 20, 30, 40], area=1200, iscrowd=0),
    dict(id=2, image_id=1, category_id=1, bbox=[0, 0, 5, 5], area=25, iscrowd=1),
    dict(id=3, image_id=1, category_id=3, bbox=[50, 10, 0.5, 20], area=10, iscrowd=0),  # w < 1
    dict(id=4, image_id=1, category_id=3, bbox=[50, 10, 10, 10], area=0, iscrowd=0),  # no area
    dict(id=5, image_id=1, category_id=3, bbox=[90, 70, 20, 20], area=400, iscrowd=0),  # clipped
    dict(id=6, image_id=2, category_id=3, bbox=[1, 2, 3, 4], area=12, iscrowd=0),
    dict(id=7, image_id=2, category_id=1, bbox=[1, 1, 10, 0.2], area=2, iscrowd=0),  # h < 1
    dict(id=8, image_id=3, category_id=1, bbox=[2, 2, 8, 8], area=64, iscrowd=0),
]


def write_coco(tmp_path, images=IMAGES, annotations=ANNOTATIONS, categories=CATEGORIES):
    (tmp_path / 'ann.json').write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return tmp_path


def build(tmp_path, **kwargs):
    cfg = dict(type='CocoDataset', data_root=str(tmp_path), ann_file='ann.json',
               data_prefix=dict(img='imgs/'),
               metainfo=dict(classes=('person', 'car', 'toothbrush')))
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_labels_are_contiguous_in_class_order(tmp_path):
    with pytest.warns(BadSampleWarning) as record:
        dataset = build(write_coco(tmp_path), test_mode=True)
    assert dataset.cat_ids == [1, 3, 90]
    assert dataset.cat2label == {1: 0, 3: 1, 90: 2}
    assert dataset.label2cat == {0: 1, 1: 3, 2: 90}
    first = dataset.get_data_info(0)
    assert first['img_id'] == 1 and (first['height'], first['width']) == (80, 100)
    assert first['img_path'] == str(tmp_path / 'imgs' / 'a.jpg')
    # xywh -> xyxy; crowd -> ignored; sub-pixel and zero-area boxes dropped (as MMDetection);
    # a box reaching past the image clipped to it.
    assert first['instances'] == [
        dict(bbox=[10.0, 20.0, 40.0, 60.0], bbox_label=2, ignore_flag=0),
        dict(bbox=[0.0, 0.0, 5.0, 5.0], bbox_label=0, ignore_flag=1),
        dict(bbox=[90.0, 70.0, 100.0, 80.0], bbox_label=1, ignore_flag=0),
    ]
    # one summary warning counts what was dropped or clipped, naming annotation ids
    (summary,) = [str(w.message) for w in record]
    assert '3 x boxes under one pixel' in summary and 'annotation id 3' in summary
    assert '1 x boxes reaching outside their image, clipped' in summary
    assert dataset.get_data_info(1)['instances'] == [
        dict(bbox=[1.0, 2.0, 4.0, 6.0], bbox_label=1, ignore_flag=0)]
    assert dataset.get_cat_ids(0) == [2, 0, 1]
    assert len(dataset) == 4  # test_mode keeps every image


def test_label_order_follows_the_file_as_in_mmdetection(tmp_path):
    """labels in the file's category order, names shown for them right."""
    with pytest.warns(ClassOrderWarning) as record:
        dataset = build(write_coco(tmp_path), metainfo=dict(
            classes=('toothbrush', 'person'), palette=[(1, 1, 1), (2, 2, 2)]), test_mode=True)
    assert len([w for w in record if w.category is ClassOrderWarning]) == 1
    assert "'person', 'toothbrush'" in str(record[0].message)
    # pycocotools' get_cat_ids(cat_names=classes): file order, person (1) before toothbrush (90)
    assert dataset.cat_ids == [1, 90]
    assert dataset.get_cat_ids(0) == [1, 0]  # the toothbrush box, then the crowd person
    # classes[label] names each label right; the palette moves with its class
    assert dataset.metainfo['classes'] == ('person', 'toothbrush')
    assert dataset.metainfo['palette'] == [(2, 2, 2), (1, 1, 1)]
    # the car annotation of image 2 is not a selected class
    assert dataset.get_data_info(1)['instances'] == []


def test_classes_in_file_order_keep_metainfo_and_do_not_warn(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error', ClassOrderWarning)
        dataset = build(write_coco(tmp_path), metainfo=dict(classes=('person', 'toothbrush')),
                        test_mode=True)
    assert dataset.metainfo['classes'] == ('person', 'toothbrush')
    assert dataset.cat_ids == [1, 90]


def test_one_class_subset(tmp_path):
    dataset = build(write_coco(tmp_path), metainfo=dict(classes=('car',)),
                    filter_cfg=dict(filter_empty_gt=True))
    assert dataset.metainfo['classes'] == ('car',)
    # MMDetection's filter_empty_gt keeps images with any car annotation, even a dropped one
    assert [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))] == [1, 2]
    assert dataset.get_cat_ids(0) == [0] and dataset.get_cat_ids(1) == [0]


def test_filter_empty_gt_and_min_size(tmp_path):
    write_coco(tmp_path)
    ids = lambda ds: [ds.get_data_info(i)['img_id'] for i in range(len(ds))]  # noqa: E731
    assert ids(build(tmp_path, filter_cfg=dict(filter_empty_gt=True))) == [1, 2, 3]
    assert ids(build(tmp_path, filter_cfg=dict(filter_empty_gt=True, min_size=32))) == [1, 2]
    assert ids(build(tmp_path, filter_cfg=dict(filter_empty_gt=False, min_size=32))) == [1, 2, 4]
    # test_mode never filters
    assert ids(build(tmp_path, filter_cfg=dict(filter_empty_gt=True, min_size=32),
                     test_mode=True)) == [1, 2, 3, 4]


def test_default_metainfo_is_coco():
    assert len(CocoDataset.METAINFO['classes']) == 80
    assert len(CocoDataset.METAINFO['palette']) == 80
    assert len(set(CocoDataset.METAINFO['palette'])) == 80


def test_file_with_some_of_the_classes_loads_as_in_mmdetection(tmp_path):
    """the 80 COCO classes over a file of 3 categories."""
    with pytest.warns(ClassOrderWarning, match='77 classes'):
        dataset = DATASETS.build(dict(type='CocoDataset', data_root=str(write_coco(tmp_path)),
                                      ann_file='ann.json', test_mode=True))
    assert dataset.cat_ids == [1, 3, 90]
    assert dataset.get_cat_ids(0) == [2, 0, 1]
    classes = dataset.metainfo['classes']
    assert len(classes) == 80 and set(classes) == set(CocoDataset.METAINFO['classes'])
    assert classes[:3] == ('person', 'car', 'toothbrush')
    assert len(dataset.metainfo['palette']) == 80


def test_no_class_in_the_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"none of the classes \('dog',\).*'toothbrush'"):
        build(write_coco(tmp_path), metainfo=dict(classes=('dog',)))


def test_image_info_file_without_annotations_key_loads_for_testing(tmp_path):
    """test-dev's image_info_test-dev2017.json has no 'annotations'."""
    (tmp_path / 'ann.json').write_text(json.dumps(dict(images=IMAGES, categories=CATEGORIES)))
    dataset = build(tmp_path, test_mode=True)
    assert len(dataset) == 4 and dataset.cat_ids == [1, 3, 90]
    assert all(dataset.get_data_info(i)['instances'] == [] for i in range(4))


def test_filter_that_empties_the_training_set_fails_at_once(tmp_path):
    """not a ZeroDivisionError in DefaultSampler, nor a hang in InfiniteSampler."""
    write_coco(tmp_path, annotations=[])
    assert len(build(tmp_path, test_mode=True)) == 4
    with pytest.raises(ValueError, match=r"CocoDataset\('.*ann.json'\).*filter_empty_gt.*"
                                         r'removed all 4 images \(4 without ground truth'):
        build(tmp_path, filter_cfg=dict(filter_empty_gt=True))
    write_coco(tmp_path)
    with pytest.raises(ValueError, match=r"min_size': 500.*removed all 4 images.*4 with a side"):
        build(tmp_path, filter_cfg=dict(filter_empty_gt=False, min_size=500))


def test_missing_ann_file_names_full_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / 'missing.json')):
        build(tmp_path, ann_file='missing.json')


@pytest.mark.parametrize('content, missing', [
    (dict(images=[], annotations=[]), "'categories'"),
    (dict(images=[], annotations={}, categories=[]), "'annotations' is a dict"),
    (dict(images=[dict(id=1, file_name='a.jpg', width=5)], annotations=[], categories=[]),
     "'height'"),
    ([1, 2], 'top level is a list'),
])
def test_not_coco_json_says_what_is_missing(tmp_path, content, missing):
    (tmp_path / 'ann.json').write_text(json.dumps(content))
    with pytest.raises(ValueError, match=missing):
        build(tmp_path)


def test_duplicate_annotation_ids_rejected(tmp_path):
    annotations = [dict(ANNOTATIONS[0]), dict(ANNOTATIONS[5], id=ANNOTATIONS[0]['id'])]
    with pytest.raises(ValueError, match='not unique'):
        build(write_coco(tmp_path, annotations=annotations))


def test_lazy_init_defers_loading(tmp_path):
    dataset = build(tmp_path, ann_file='later.json', lazy_init=True)
    write_coco(tmp_path)
    (tmp_path / 'ann.json').rename(tmp_path / 'later.json')
    assert not dataset._fully_initialized
    assert len(dataset) == 4  # no filter_cfg: nothing dropped
    assert dataset.cat_ids == [1, 3, 90]


def test_serialize_data_and_indices(tmp_path):
    write_coco(tmp_path)
    plain = build(tmp_path, serialize_data=False, test_mode=True)
    packed = build(tmp_path, serialize_data=True, test_mode=True)
    # serialised: one byte buffer that workers share, no list of dicts
    assert packed.data_bytes.dtype == np.uint8 and len(packed.data_list) == 0
    assert [packed.get_data_info(i) for i in range(4)] == [
        plain.get_data_info(i) for i in range(4)]
    assert [build(tmp_path, indices=[3, 1], test_mode=True).get_data_info(i)['img_id']
            for i in range(2)] == [4, 2]
