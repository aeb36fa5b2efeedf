"""COCO files with wrong JSON types: every error names the file and the entry, before
anything reaches numpy or pycocotools, and ``skip_bad_samples`` skips what it can."""
import json

import cv2
import numpy as np
import pytest

from detlab.datasets import CocoDataset
from detlab.evaluation.functional.coco_format import load_coco
from detlab.evaluation.metrics import load_det_results

from helpers import assert_ok, run_tool


def write_coco(root, images=None, annotations=None, categories=None):
    """Two good 40x30 images with one box each, plus what the test adds."""
    (root / 'images').mkdir(exist_ok=True)
    good = [dict(id=i, file_name=f'{i}.jpg', width=40, height=30) for i in (1, 2)]
    for img in good:
        cv2.imwrite(str(root / 'images' / img['file_name']), np.zeros((30, 40, 3), np.uint8))
    anns = [dict(id=i, image_id=i, category_id=1, bbox=[5, 5, 10, 10], area=100, iscrowd=0)
            for i in (1, 2)]
    content = dict(images=good + (images or []), annotations=anns + (annotations or []),
                   categories=categories or [dict(id=1, name='square')])
    path = root / 'ann.json'
    path.write_text(json.dumps(content))
    return path


def build(root, **kwargs):
    return CocoDataset(data_root=str(root), ann_file='ann.json', data_prefix=dict(img='images/'),
                       metainfo=dict(classes=('square',)), pipeline=[], **kwargs)


BAD_IMAGES = {
    'int file_name': (dict(id=3, file_name=7, width=40, height=30),
                      'image id 3 (file_name=7)', 'has a file_name that is not a string'),
    'list id': (dict(id=[3], file_name='3.jpg', width=40, height=30),
                'images[2] (has id=[3] (list)', 'has an id that is not a COCO id'),
    'huge id': (dict(id=2**70, file_name='3.jpg', width=40, height=30),
                f'images[2] (has id={2**70}', 'ids must be integers that fit in 64 bits'),
}


@pytest.mark.parametrize('case', sorted(BAD_IMAGES))
def test_bad_image_entry_is_named_and_skippable(tmp_path, case):
    entry, where, reason = BAD_IMAGES[case]
    write_coco(tmp_path, images=[entry])
    with pytest.raises(ValueError) as error:
        build(tmp_path)
    assert "CocoDataset('" in str(error.value) and where in str(error.value)
    assert reason in str(error.value)
    with pytest.warns(UserWarning, match='while loading'):
        dataset = build(tmp_path, skip_bad_samples=True)
    assert [dataset.get_data_info(i)['img_id'] for i in range(len(dataset))] == [1, 2]


@pytest.mark.parametrize('field, value', [('category_id', [1]), ('image_id', {'a': 1}),
                                          ('id', 2**64), ('area', 'big')])
def test_bad_annotation_types_are_named_and_skippable(tmp_path, field, value):
    ann = dict(id=3, image_id=1, category_id=1, bbox=[1, 1, 5, 5], area=25, iscrowd=0)
    ann[field] = value
    write_coco(tmp_path, annotations=[ann])
    with pytest.raises(ValueError, match='is not a COCO annotation') as error:
        build(tmp_path)
    assert 'ann.json' in str(error.value)
    if field != 'area':
        assert f'has {field}={value!r}' in str(error.value)
    with pytest.warns(UserWarning):
        dataset = build(tmp_path, skip_bad_samples=True)
    assert sum(len(dataset.get_data_info(i)['instances']) for i in range(len(dataset))) == 2


@pytest.mark.parametrize('category, expected', [
    (dict(id=2**63, name='square'), f'categories[0] has id={2**63} (int); ids must be'),
    (dict(id=[1], name='square'), 'categories[0] has id=[1] (list)'),
    (dict(id=1, name=5), 'categories[0] has name=5, not a string'),
])
def test_bad_categories_always_stop_naming_the_entry(tmp_path, category, expected):
    write_coco(tmp_path, categories=[category])
    for skip in (False, True):
        with pytest.raises(ValueError) as error:
            build(tmp_path, skip_bad_samples=skip)
        assert f"Annotation file '{tmp_path}/ann.json': {expected}" in str(error.value)


def test_deeply_nested_json_is_named(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_text('{"images": ' + '[' * 100000 + ']' * 100000 + '}')
    with pytest.raises(ValueError, match="nests lists or objects deeper") as error:
        build(tmp_path)
    assert f"'{tmp_path}/ann.json'" in str(error.value)
    with pytest.raises(ValueError, match="COCO ann_file '.*ann.json' nests lists"):
        load_coco(str(path))
    results = tmp_path / 'preds.json'
    results.write_text('[' * 100000 + ']' * 100000)
    with pytest.raises(ValueError, match="Result file '.*preds.json' nests lists"):
        load_det_results(str(results))


def test_metric_ann_file_with_bad_ids_names_file_and_entry(tmp_path):
    path = write_coco(tmp_path, annotations=[dict(id=3, image_id=1, category_id=2**64,
                                                  bbox=[1, 1, 5, 5])])
    with pytest.raises(ValueError) as error:
        load_coco(str(path))
    assert str(error.value) == (f"Annotation file '{path}': annotations[2] has "
                                f'category_id={2**64} (int); ids must be integers that fit in '
                                '64 bits.')


@pytest.mark.slow
def test_browse_dataset_names_a_bad_entry_and_skips_it_when_asked(tmp_path):
    write_coco(tmp_path, images=[dict(id=3, file_name=7, width=40, height=30)])
    config = tmp_path / 'config.py'
    config.write_text(f'''
train_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root='{tmp_path}', ann_file='ann.json',
    data_prefix=dict(img='images/'), metainfo=dict(classes=('square',)),
    pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations'),
              dict(type='PackDetInputs')]))
''')
    result = run_tool('tools/analysis_tools/browse_dataset.py', config, '--not-show',
                      '--output-dir', tmp_path / 'out', timeout=120)
    assert result.returncode != 0
    assert f"CocoDataset('{tmp_path}/ann.json'): image id 3 (file_name=7)" in result.stderr
    assert 'Traceback' in result.stderr and 'TypeError' not in result.stderr
    output = assert_ok(run_tool('tools/analysis_tools/browse_dataset.py', config, '--not-show',
                                '--output-dir', tmp_path / 'out', '--cfg-options',
                                'train_dataloader.dataset.skip_bad_samples=True', timeout=120))
    assert 'has a file_name that is not a string' in output
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['1.jpg', '2.jpg']
