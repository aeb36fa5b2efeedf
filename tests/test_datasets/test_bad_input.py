"""Each kind of bad input, through a dataset and a DataLoader with 2 workers.

Without ``skip_bad_samples`` the run fails at once naming the file or the
annotation id; with it the bad sample is dropped and counted.
"""
import json
import warnings

import cv2
import numpy as np
import pytest
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader

from detlab.datasets import BadInputError, BadSampleWarning
from detlab.registry import DATASETS
from test_voc_dataset import VOC2007, write_voc  # noqa: I001  (a sibling test module)

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


def load_all(dataset):
    """Every sample through a 2-worker DataLoader; the image paths it yielded."""
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=pseudo_collate)
    batches = iter(loader)
    try:
        return [sample.img_path for batch in batches for sample in batch['data_samples']]
    finally:
        # Stop the workers now: an error's traceback would keep them alive until collected.
        batches._shutdown_workers()


def extra_image(img_id, file_name='5.png'):
    return dict(id=img_id, file_name=file_name, width=32, height=24)


# (what is wrong, extra images, extra annotations, text the error and the summary name)
BAD_ANNOTATIONS = [
    ('zero width', [extra_image(5)], [dict(good_box(9, 5), bbox=[3, 3, 0, 5])],
     'annotation id 9', 'zero or negative width'),
    ('negative height', [extra_image(5)], [dict(good_box(9, 5), bbox=[3, 3, 5, -2])],
     'annotation id 9', 'zero or negative width'),
    ('box outside the image', [extra_image(5)], [dict(good_box(9, 5), bbox=[40, 30, 5, 5])],
     'annotation id 9', 'wholly outside its image'),
    ('unknown category id', [extra_image(5)], [dict(good_box(9, 5), category_id=7)],
     'annotation id 9', "category_id that is not in 'categories'"),
    ('unknown image id', [], [good_box(9, 77)], 'annotation id 9', "image id that is not in"),
    ('no bbox', [extra_image(5)], [dict(id=9, image_id=5, category_id=1)],
     'annotation 9', 'is not a COCO annotation'),
    ('image without size', [dict(id=5, file_name='5.png', width=0, height=24)], [],
     'image id 5', 'not a positive number'),
]


@pytest.mark.parametrize('case', BAD_ANNOTATIONS, ids=[case[0] for case in BAD_ANNOTATIONS])
def test_bad_annotation_fails_at_once_or_is_counted(tmp_path, case):
    _, images, annotations, where, reason = case
    write_coco(tmp_path, images, annotations)
    cv2.imwrite(str(tmp_path / 'imgs' / '5.png'), np.zeros((24, 32, 3), np.uint8))
    with pytest.raises(BadInputError, match=rf"ann.json'\): {where}.*{reason}"):
        build(tmp_path)
    with pytest.warns(BadSampleWarning, match=rf'1 x .*{reason}.*{where}'):
        dataset = build(tmp_path, skip_bad_samples=True)
    # the bad box is dropped: image 5, if kept, has no box, so filter_empty_gt drops it
    paths = load_all(dataset)
    assert sorted(paths) == [str(tmp_path / 'imgs' / f'{i}.png') for i in range(1, NUM_GOOD + 1)]


def test_image_without_annotations_is_filtered_or_kept_for_testing(tmp_path):
    write_coco(tmp_path, [extra_image(5)])
    cv2.imwrite(str(tmp_path / 'imgs' / '5.png'), np.zeros((24, 32, 3), np.uint8))
    assert len(load_all(build(tmp_path))) == NUM_GOOD  # filter_empty_gt drops it
    assert len(load_all(build(tmp_path, test_mode=True))) == NUM_GOOD + 1


def test_malformed_json_names_the_file(tmp_path):
    (tmp_path / 'ann.json').write_text('{"images": [], "categories": [')
    for skip in (False, True):
        with pytest.raises(ValueError, match=r"'.*ann.json' is not valid JSON: .*line 1"):
            build(tmp_path, skip_bad_samples=skip)


def test_missing_image_fails_in_the_worker_naming_it_or_is_dropped_at_load(tmp_path):
    write_coco(tmp_path, [extra_image(5, 'gone.png')], [good_box(9, 5)])
    with pytest.raises(FileNotFoundError, match='gone.png'):
        load_all(build(tmp_path))
    with pytest.warns(BadSampleWarning, match=r"1 x has no image file.*gone.png"):
        dataset = build(tmp_path, skip_bad_samples=True)
    assert len(dataset) == NUM_GOOD and len(load_all(dataset)) == NUM_GOOD


@pytest.mark.parametrize('content', [b'not an image at all', b'\x89PNG\r\n\x1a\n\x00\x00'],
                         ids=['garbage', 'truncated png'])
def test_unreadable_image_fails_naming_it_or_is_skipped(tmp_path, content):
    write_coco(tmp_path, [extra_image(5, 'bad.png')], [good_box(9, 5)])
    (tmp_path / 'imgs' / 'bad.png').write_bytes(content)
    with pytest.raises(Exception, match='bad.png'):
        load_all(build(tmp_path))
    dataset = build(tmp_path, skip_bad_samples=True)
    paths = load_all(dataset)
    # the bad sample was replaced by another draw: same count, never the bad file
    assert len(paths) == NUM_GOOD + 1 and not any(p.endswith('bad.png') for p in paths)
    # in one process the skip is counted and named (workers warn on their own stderr)
    with pytest.warns(BadSampleWarning, match=r"skipped sample 4 \('.*bad.png'\).*1 skipped"):
        assert dataset[4]['data_samples'].img_path != str(tmp_path / 'imgs' / 'bad.png')
    assert dataset._num_skipped_at_runtime >= 1  # the redraw may hit it again


def test_test_set_never_skips_an_unreadable_image(tmp_path):
    write_coco(tmp_path, [extra_image(5, 'bad.png')], [good_box(9, 5)])
    (tmp_path / 'imgs' / 'bad.png').write_bytes(b'garbage')
    with pytest.raises(Exception, match='bad.png'):
        load_all(build(tmp_path, skip_bad_samples=True, test_mode=True))


@pytest.mark.parametrize('xml, reason, image_kept', [
    ('<annotation><size><width>5', 'not well-formed XML', False),
    (None, 'does not exist', False),
    # a bad object drops only itself
    ('<annotation><object><name>dog</name><bndbox><xmin>1</xmin></bndbox></object>'
     '<size><width>9</width><height>9</height></size></annotation>', 'has no <bndbox/ymin>',
     True),
])
def test_bad_voc_xml_fails_naming_it_or_is_dropped(tmp_path, xml, reason, image_kept):
    write_voc(tmp_path, 'VOC2007', VOC2007)
    xml_file = tmp_path / 'VOC2007' / 'Annotations' / '000002.xml'
    if xml is None:
        xml_file.unlink()
    else:
        xml_file.write_text(xml)
    cfg = dict(type='VOCDataset', data_root=str(tmp_path),
               ann_file='VOC2007/ImageSets/Main/trainval.txt',
               data_prefix=dict(sub_data_root='VOC2007/'), pipeline=PIPELINE)
    with pytest.raises(BadInputError, match=rf"000002.xml'.*{reason}"):
        DATASETS.build(cfg)
    with pytest.warns(BadSampleWarning, match=rf'1 x .*{reason}'):
        dataset = DATASETS.build(dict(cfg, skip_bad_samples=True))
    names = sorted(path.rsplit('/', 1)[1] for path in load_all(dataset))
    assert names == ['000001.jpg'] + ['000002.jpg'] * image_kept + ['000003.jpg']


def test_voc_box_of_negative_width_is_bad(tmp_path):
    write_voc(tmp_path, 'VOC2007', {'000001': ((50, 50), [('dog', 0, 30, 5, 10, 20)])})
    with pytest.raises(BadInputError, match=r"000001.xml' object 0 \(dog\).*negative width"):
        DATASETS.build(dict(type='VOCDataset', data_root=str(tmp_path),
                            ann_file='VOC2007/ImageSets/Main/trainval.txt',
                            data_prefix=dict(sub_data_root='VOC2007/')))


def test_clean_data_loads_without_a_warning(tmp_path):
    write_coco(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('error', BadSampleWarning)
        assert len(load_all(build(tmp_path, skip_bad_samples=True))) == NUM_GOOD
