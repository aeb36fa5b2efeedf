"""LoadImageFromFile and LoadAnnotations."""
import copy

import cv2
import numpy as np
import pytest
import torch

from detlab.datasets.transforms import LoadAnnotations, LoadImageFromFile
from detlab.registry import TRANSFORMS
from detlab.structures.bbox import HorizontalBoxes


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
    with pytest.raises(FileNotFoundError, match='broken.jpg.*could not be decoded'):
        LoadImageFromFile()(dict(img_path=str(tmp_path / 'broken.jpg')))
    (tmp_path / 'empty.png').write_bytes(b'')
    with pytest.raises(FileNotFoundError, match='empty.png.*empty'):
        LoadImageFromFile()(dict(img_path=str(tmp_path / 'empty.png')))
    assert LoadImageFromFile(ignore_empty=True)(dict(img_path=missing)) is None


def test_load_annotations_dtypes_and_shapes():
    instances = [dict(bbox=[1, 2, 3, 4], bbox_label=2, ignore_flag=0),
                 dict(bbox=[5, 6, 7.5, 8], bbox_label=0, ignore_flag=1)]
    results = TRANSFORMS.build(dict(type='LoadAnnotations', with_bbox=True))(
        dict(instances=instances))
    # box_type='hbox' (the default) gives HorizontalBoxes, as in MMDetection
    assert isinstance(results['gt_bboxes'], HorizontalBoxes)
    assert results['gt_bboxes'].dtype == torch.float32
    assert results['gt_bboxes'].tensor.tolist() == [[1, 2, 3, 4], [5, 6, 7.5, 8]]
    as_array = LoadAnnotations(box_type=None)(dict(instances=instances))['gt_bboxes']
    assert isinstance(as_array, np.ndarray) and as_array.dtype == np.float32
    assert results['gt_bboxes_labels'].dtype == np.int64
    assert results['gt_bboxes_labels'].tolist() == [2, 0]
    assert results['gt_ignore_flags'].dtype == bool
    assert results['gt_ignore_flags'].tolist() == [False, True]


def test_load_annotations_without_instances():
    results = LoadAnnotations()(dict(instances=[]))
    assert results['gt_bboxes'].shape == (0, 4) and results['gt_bboxes'].dtype == torch.float32
    assert results['gt_bboxes_labels'].shape == (0,)
    assert results['gt_ignore_flags'].shape == (0,)


def test_load_annotations_rejects_unknown_box_type():
    with pytest.raises(KeyError, match='rbox'):
        LoadAnnotations(box_type='rbox')


def square_polygon(x1, y1, x2, y2):
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def test_masks_from_polygons_and_rle():
    import pycocotools.mask as mask_util

    from detlab.structures.mask import BitmapMasks, PolygonMasks
    height, width = 20, 30
    bitmap = np.zeros((height, width), np.uint8)
    bitmap[5:10, 12:20] = 1
    compressed = mask_util.encode(np.asfortranarray(bitmap))
    # Uncompressed RLE as COCO stores crowd regions: column-major run lengths, zeros first.
    flat = bitmap.flatten(order='F').tolist()
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    uncompressed = dict(size=[height, width], counts=counts)
    instances = [
        dict(bbox=[2, 3, 8, 9], bbox_label=0, ignore_flag=0, mask=square_polygon(2, 3, 8, 9)),
        dict(bbox=[12, 5, 20, 10], bbox_label=1, ignore_flag=0, mask=compressed),
        dict(bbox=[12, 5, 20, 10], bbox_label=1, ignore_flag=0, mask=uncompressed),
        dict(bbox=[0, 0, 1, 1], bbox_label=2, ignore_flag=0, mask=[[1, 2, 3, 4]]),  # 2 points
    ]
    base = dict(instances=instances, ori_shape=(height, width))
    results = LoadAnnotations(with_mask=True)(dict(base))
    masks = results['gt_masks']
    assert isinstance(masks, BitmapMasks) and masks.masks.shape == (4, height, width)
    assert masks.masks[0].sum() == 36 and masks.masks[0][3:9, 2:8].all()
    assert np.array_equal(masks.masks[1], bitmap) and np.array_equal(masks.masks[2], bitmap)
    assert masks.masks[3].sum() == 0
    assert results['gt_ignore_flags'].tolist() == [False, False, False, True]
    assert masks.get_bboxes('hbox').tensor[:3].tolist() == [[2, 3, 8, 9], [12, 5, 20, 10],
                                                              [12, 5, 20, 10]]

    polygons = LoadAnnotations(with_mask=True, poly2mask=False)(dict(base))
    assert isinstance(polygons['gt_masks'], PolygonMasks)
    # PolygonMasks cannot hold RLE: those instances are ignored, as in MMDetection.
    assert polygons['gt_ignore_flags'].tolist() == [False, True, True, True]
    assert polygons['gt_masks'].areas[0] == pytest.approx(36)


def test_masks_without_instances_and_missing_mask():
    results = LoadAnnotations(with_mask=True)(dict(instances=[], ori_shape=(4, 5)))
    assert results['gt_masks'].masks.shape == (0, 4, 5)
    with pytest.raises(KeyError, match="'mask'"):
        LoadAnnotations(with_mask=True)(dict(
            instances=[dict(bbox=[0, 0, 1, 1], bbox_label=0)], ori_shape=(4, 5), img_path='a.jpg'))


def test_filter_annotations_by_box_and_mask():
    from detlab.datasets.transforms import FilterAnnotations
    instances = [dict(bbox=[0, 0, 10, 10], bbox_label=0, mask=square_polygon(0, 0, 10, 10)),
                 dict(bbox=[0, 0, 1, 5], bbox_label=1, mask=square_polygon(0, 0, 1, 5)),
                 dict(bbox=[3, 3, 9, 9], bbox_label=2, mask=[[3, 3, 3, 3, 3, 3]])]
    loaded = LoadAnnotations(with_mask=True)(dict(instances=instances, ori_shape=(12, 12)))
    by_box = FilterAnnotations(min_gt_bbox_wh=(1, 1))(copy.deepcopy(loaded))
    assert by_box['gt_bboxes_labels'].tolist() == [0, 2]
    assert len(by_box['gt_masks']) == 2 and len(by_box['gt_ignore_flags']) == 2
    both = FilterAnnotations(by_mask=True)(copy.deepcopy(loaded))
    assert both['gt_bboxes_labels'].tolist() == [0]
    none_left = FilterAnnotations(min_gt_bbox_wh=(50, 50))
    assert none_left(copy.deepcopy(loaded)) is None  # keep_empty=True drops the sample
    kept = FilterAnnotations(min_gt_bbox_wh=(50, 50), keep_empty=False)(copy.deepcopy(loaded))
    assert kept['gt_bboxes'].shape == (0, 4)
    empty = LoadAnnotations()(dict(instances=[]))
    assert FilterAnnotations()(empty)['gt_bboxes'].shape == (0, 4)
    with pytest.raises(ValueError, match='by_box'):
        FilterAnnotations(by_box=False, by_mask=False)


def test_load_image_from_ndarray_keeps_the_array_and_sets_shapes():
    from detlab.datasets.transforms import LoadImageFromNDArray
    image = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    results = LoadImageFromNDArray(to_float32=True)(dict(img=image))
    assert results['img'].dtype == np.float32 and np.array_equal(results['img'], image)
    assert results['img_shape'] == results['ori_shape'] == (5, 7)
    assert results['img_path'] is None
    with pytest.raises(TypeError, match='numpy array'):
        LoadImageFromNDArray()(dict(img='a.jpg'))

def test_seg_map_with_reduce_zero_label_and_label_map(tmp_path):
    seg = np.array([[0, 1, 2], [3, 255, 1]], np.uint8)
    cv2.imwrite(str(tmp_path / 'seg.png'), seg)
    loader = LoadAnnotations(with_bbox=False, with_label=False, with_seg=True,
                             reduce_zero_label=True)
    results = loader(dict(seg_map_path=str(tmp_path / 'seg.png'), label_map={2: 0}))
    # 0 -> ignore (255), others shift down by one, then label 2 -> 0
    assert results['gt_seg_map'].tolist() == [[255, 0, 1], [0, 255, 0]]
    assert results['ignore_index'] == 255
    plain = LoadAnnotations(with_bbox=False, with_label=False, with_seg=True)(
        dict(seg_map_path=str(tmp_path / 'seg.png')))
    assert np.array_equal(plain['gt_seg_map'], seg)
