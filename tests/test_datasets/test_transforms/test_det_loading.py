"""LoadImageFromFile and LoadAnnotations."""
import cv2
import numpy as np
import pytest

from detlab.datasets.transforms import LoadAnnotations, LoadImageFromFile
from detlab.registry import TRANSFORMS


def test_load_image_sets_shapes(tmp_path):
    img = np.zeros((7, 11, 3), np.uint8)
    img[2, 3] = (10, 20, 30)
    cv2.imwrite(str(tmp_path / 'x.png'), img)
    loader = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    results = loader(dict(img_path=str(tmp_path / 'x.png')))
    assert np.array_equal(results['img'], img)
    assert results['img_shape'] == results['ori_shape'] == (7, 11)
    as_float = LoadImageFromFile(to_float32=True)(dict(img_path=str(tmp_path / 'x.png')))
    assert as_float['img'].dtype == np.float32


def test_missing_or_broken_image_names_the_path(tmp_path):
    missing = str(tmp_path / 'nope.jpg')
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        LoadImageFromFile()(dict(img_path=missing))
    (tmp_path / 'broken.jpg').write_bytes(b'not an image')
    with pytest.raises(FileNotFoundError, match='broken.jpg'):
        LoadImageFromFile()(dict(img_path=str(tmp_path / 'broken.jpg')))
    assert LoadImageFromFile(ignore_empty=True)(dict(img_path=missing)) is None


def test_load_annotations_dtypes_and_shapes():
    instances = [dict(bbox=[1, 2, 3, 4], bbox_label=2, ignore_flag=0),
                 dict(bbox=[5, 6, 7.5, 8], bbox_label=0, ignore_flag=1)]
    results = TRANSFORMS.build(dict(type='LoadAnnotations', with_bbox=True))(
        dict(instances=instances))
    assert results['gt_bboxes'].dtype == np.float32
    assert results['gt_bboxes'].tolist() == [[1, 2, 3, 4], [5, 6, 7.5, 8]]
    assert results['gt_bboxes_labels'].dtype == np.int64
    assert results['gt_bboxes_labels'].tolist() == [2, 0]
    assert results['gt_ignore_flags'].dtype == bool
    assert results['gt_ignore_flags'].tolist() == [False, True]


def test_load_annotations_without_instances():
    results = LoadAnnotations()(dict(instances=[]))
    assert results['gt_bboxes'].shape == (0, 4) and results['gt_bboxes'].dtype == np.float32
    assert results['gt_bboxes_labels'].shape == (0,)
    assert results['gt_ignore_flags'].shape == (0,)


def test_load_annotations_rejects_masks():
    with pytest.raises(ValueError, match='with_mask'):
        LoadAnnotations(with_mask=True)
    with pytest.raises(ValueError, match='rbox'):
        LoadAnnotations(box_type='rbox')


def test_load_image_from_ndarray_keeps_the_array_and_sets_shapes():
    from detlab.datasets.transforms import LoadImageFromNDArray
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    results = LoadImageFromNDArray(to_float32=True)(dict(img=image))
    assert results['img'].dtype == np.float32 and np.array_equal(results['img'], image)
    assert results['img_shape'] == results['ori_shape'] == (5, 7)
    assert results['img_path'] is None
    with pytest.raises(TypeError, match='numpy array'):
        LoadImageFromNDArray()(dict(img='a.jpg'))
