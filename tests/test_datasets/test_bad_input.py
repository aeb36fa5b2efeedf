"""Each kind of bad input, through a dataset and a DataLoader with 2 workers.

Without ``skip_bad_samples`` the run fails at once naming the file or the
annotation id; with it the bad sample is dropped and counted.
"""
import warnings

import cv2
import numpy as np
import pytest
from mmengine.dataset import Compose, pseudo_collate
from torch.utils.data import DataLoader

from detlab.datasets import BadInputError, BadSampleWarning
from detlab.datasets.bad_samples import SkipTally, attach_skip_records, pop_skipped_samples
from detlab.registry import DATASETS
from bad_input_cases import (NUM_GOOD, PIPELINE, build, extra_image, good_box,
                             two_bad_images_skipped_once_an_epoch, write_coco)
from helpers import VOC2007, write_voc


def load_all(dataset, paths=True):
    """Every sample through a 2-worker DataLoader: the image paths, or the data samples."""
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=pseudo_collate)
    batches = iter(loader)
    try:
        samples = [sample for batch in batches for sample in batch['data_samples']]
    finally:
        # Stop the workers now: an error's traceback would keep them alive until collected.
        batches._shutdown_workers()
    return [sample.img_path for sample in samples] if paths else samples


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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_missing_image_fails_in_the_worker_naming_it_or_is_dropped_at_load(tmp_path):
    write_coco(tmp_path, [extra_image(5, 'gone.png')], [good_box(9, 5)])
    with pytest.raises(FileNotFoundError, match='gone.png'):
        load_all(build(tmp_path))
    with pytest.warns(BadSampleWarning, match=r"1 x has no image file.*gone.png"):
        dataset = build(tmp_path, skip_bad_samples=True)
    assert len(dataset) == NUM_GOOD and len(load_all(dataset)) == NUM_GOOD


@pytest.mark.slow
@pytest.mark.parametrize('content', [b'not an image at all', b'\x89PNG\r\n\x1a\n\x00\x00'],
                         ids=['garbage', 'truncated png'])
def test_unreadable_image_fails_naming_it_or_is_skipped(tmp_path, content, capfd):
    write_coco(tmp_path, [extra_image(5, 'bad.png')], [good_box(9, 5)])
    (tmp_path / 'imgs' / 'bad.png').write_bytes(content)
    with pytest.raises(Exception, match='bad.png'):
        load_all(build(tmp_path))
    dataset = build(tmp_path, skip_bad_samples=True)
    samples = load_all(dataset, paths=False)
    paths = [sample.img_path for sample in samples]
    # the bad sample was replaced by another draw: same count, never the bad file
    assert len(paths) == NUM_GOOD + 1 and not any(p.endswith('bad.png') for p in paths)
    # the skip (and any redraw that hit it again) came back with a sample, for
    # BadSampleHook; the workers printed nothing of their own
    records = pop_skipped_samples(samples)
    assert records and {(r['index'], r['error_type']) for r in records} == {
        (4, 'FileNotFoundError')}
    assert all(r['img_path'].endswith('bad.png') and 'bad.png' in r['error'] for r in records)
    assert not any('skipped_samples' in sample.metainfo for sample in samples)  # popped
    assert 'skipped' not in capfd.readouterr().err


@pytest.mark.slow
def test_every_worker_delivers_each_skip_exactly_once(tmp_path):
    """Two bad images, one in each of 2 workers, over 2 epochs: 4 records, no more, no less."""
    dataset = two_bad_images_skipped_once_an_epoch(tmp_path)
    # batch_size 1: worker 0 loads indices 0, 2, 4 and worker 1 loads 1, 3, 5
    loader = DataLoader(dataset, batch_size=1, num_workers=2, collate_fn=pseudo_collate,
                        persistent_workers=True)
    tally = SkipTally()
    for _ in range(2):
        for batch in loader:
            tally.add(pop_skipped_samples(batch['data_samples']))
    assert tally.total == 4
    summary = tally.summary()
    assert 'Training skipped 4 sample(s)' in summary
    assert '4 x FileNotFoundError, from 2 different sample(s)' in summary
    assert "sample 4 ('" in summary and "sample 5 ('" in summary


def test_all_draws_failing_names_the_reasons(tmp_path):
    write_coco(tmp_path)
    for img_id in range(1, NUM_GOOD + 1):
        (tmp_path / 'imgs' / f'{img_id}.png').write_bytes(b'garbage')
    dataset = build(tmp_path, skip_bad_samples=True, max_refetch=3)
    with pytest.raises(RuntimeError, match=r"no loadable sample in 4 draws(.|\n)*4 sample\(s\)"
                                           r"(.|\n)*4 x FileNotFoundError(.|\n)*\.png"):
        dataset[0]


def test_skips_before_packing_reach_the_metainfo():
    """MultiImageMixDataset's inner dataset returns unpacked results; PackDetInputs carries them."""
    from detlab.datasets.transforms import PackDetInputs
    record = dict(dataset='D', index=3, img_path='x.png', error_type='OSError', error='OSError: x')
    results = dict(img=np.zeros((4, 4, 3), np.uint8))
    assert attach_skip_records(results, [record]) and results['skipped_samples'] == [record]
    packed = PackDetInputs(meta_keys=())(results)
    assert packed['data_samples'].skipped_samples == [record]
    assert attach_skip_records(packed, [record])
    assert pop_skipped_samples([packed['data_samples']]) == [record, record]


@pytest.mark.slow
def test_test_set_never_skips_an_unreadable_image(tmp_path):
    write_coco(tmp_path, [extra_image(5, 'bad.png')], [good_box(9, 5)])
    (tmp_path / 'imgs' / 'bad.png').write_bytes(b'garbage')
    with pytest.raises(Exception, match='bad.png'):
        load_all(build(tmp_path, skip_bad_samples=True, test_mode=True))


@pytest.mark.slow
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


@pytest.mark.slow
def test_clean_data_loads_without_a_warning(tmp_path):
    write_coco(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('error', BadSampleWarning)
        assert len(load_all(build(tmp_path, skip_bad_samples=True))) == NUM_GOOD


def test_skips_while_loading_mosaic_images_travel_with_the_sample(tmp_path):
    """An image Mosaic mixes in that fails to load is skipped, and still counted."""
    from detlab.datasets import MultiImageMixDataset
    inner = two_bad_images_skipped_once_an_epoch(tmp_path)
    inner.pipeline = Compose([dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')])
    mixed = MultiImageMixDataset(inner, [dict(type='Mosaic', img_scale=(32, 32)),
                                         dict(type='PackDetInputs')])
    mixed.pipeline[0].get_indexes = lambda dataset: [4, 1, 2]  # bad.png among the three
    sample = mixed[0]['data_samples']
    records = pop_skipped_samples([sample])
    assert [(r['index'], r['img_path'].rsplit('/', 1)[1]) for r in records] == [(4, 'bad.png')]
