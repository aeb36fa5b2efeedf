"""BitmapMasks and PolygonMasks: every operation keeps the mask where the geometry says."""
import numpy as np
import pytest
import torch

from detlab.structures.mask import (BitmapMasks, PolygonMasks, bitmap_to_polygon,
                                    encode_mask_results, mask2bbox, polygon_to_bitmap,
                                    split_combined_polys)


def square_bitmap(height=20, width=30, box=(4, 6, 10, 16)):
    """One mask filling the pixel box (x1, y1, x2, y2)."""
    x1, y1, x2, y2 = box
    masks = np.zeros((1, height, width), np.uint8)
    masks[0, y1:y2, x1:x2] = 1
    return BitmapMasks(masks, height, width)


def square_polygon(height=20, width=30, box=(4, 6, 10, 16)):
    x1, y1, x2, y2 = box
    return PolygonMasks([[np.array([x1, y1, x2, y1, x2, y2, x1, y2], np.float64)]], height,
                        width)


@pytest.mark.parametrize('make', [square_bitmap, square_polygon], ids=['bitmap', 'polygon'])
class TestBothKinds:

    def box(self, masks):
        return masks.get_bboxes('hbox').tensor[0].tolist()

    def test_basics(self, make):
        masks = make()
        assert len(masks) == 1 and (masks.height, masks.width) == (20, 30)
        assert self.box(masks) == [4, 6, 10, 16]
        assert masks.areas[0] == pytest.approx(60)
        assert masks.to_ndarray().shape == (1, 20, 30) and masks.to_ndarray().sum() == 60
        assert masks.to_tensor(torch.float32, 'cpu').sum() == 60
        both = type(masks).cat([masks, masks])
        assert len(both) == 2 and len(both[np.array([True, False])]) == 1
        assert len(both[[1]]) == 1 and len(both[0]) == 1
        with pytest.raises(ValueError):
            type(masks).cat([])

    def test_resize_rescale_flip(self, make):
        masks = make()
        assert self.box(masks.resize((40, 15))) == [2, 12, 5, 32]
        rescaled = masks.rescale(2.0)
        assert (rescaled.height, rescaled.width) == (40, 60)
        assert self.box(rescaled) == [8, 12, 20, 32]
        assert self.box(masks.flip('horizontal')) == [20, 6, 26, 16]
        assert self.box(masks.flip('vertical')) == [4, 4, 10, 14]
        assert self.box(masks.flip('diagonal')) == [20, 4, 26, 14]
        with pytest.raises(ValueError, match='sideways'):
            masks.flip('sideways')

    def test_crop_pad_expand(self, make):
        masks = make()
        cropped = masks.crop(np.array([6, 8, 20, 12]))
        assert (cropped.height, cropped.width) == (4, 14)
        assert self.box(cropped) == [0, 0, 4, 4]
        outside = masks.crop(np.array([20, 0, 30, 5]))
        assert outside.to_ndarray().sum() == 0 and len(outside) == 1
        padded = masks.pad((25, 40))
        assert (padded.height, padded.width) == (25, 40) and self.box(padded) == [4, 6, 10, 16]
        expanded = masks.expand(50, 60, 10, 20)
        assert self.box(expanded) == [24, 16, 30, 26]

    def test_translate_and_warp(self, make):
        masks = make()
        moved = masks.translate((20, 30), 5, 'horizontal')
        assert self.box(moved) == [9, 6, 15, 16]
        down = masks.translate((30, 40), 4, 'vertical')
        assert (down.height, down.width) == (30, 40) and self.box(down) == [4, 10, 10, 20]
        warped = masks.warp_perspective(np.array([[1, 0, 3], [0, 1, 2], [0, 0, 1]]), (20, 30))
        assert self.box(warped) == [7, 8, 13, 18]

    def test_crop_and_resize(self, make):
        masks = make()
        targets = masks.crop_and_resize(np.array([[4., 6, 10, 16], [0, 0, 30, 20]]), (5, 5),
                                        np.array([0, 0]))
        assert isinstance(targets, BitmapMasks) and targets.masks.shape == (2, 5, 5)
        assert targets.masks[0].all()  # the box is exactly the object
        assert 0 < targets.masks[1].sum() < 25

    def test_empty(self, make):
        empty = make()[np.zeros(1, bool)]
        assert len(empty) == 0
        assert len(empty.resize((5, 5))) == 0 and len(empty.flip()) == 0
        assert empty.to_ndarray().shape == (0, 20, 30)
        assert empty.get_bboxes('hbox').shape == (0, 4)


def test_bitmap_rotate_and_shear_keep_shape():
    masks = BitmapMasks.random(5, 20, 30)
    assert masks.rotate((20, 30), 15).masks.shape == (5, 20, 30)
    assert masks.shear((20, 30), 0.2).masks.shape == (5, 20, 30)
    square = square_bitmap(box=(10, 5, 20, 15))
    assert square.rotate((20, 30), 180, center=(14.5, 9.5)).masks[0].sum() == 100


def test_polygon_crop_clips_to_the_window():
    triangle = PolygonMasks([[np.array([0., 0, 20, 0, 0, 20])]], 20, 20)
    cropped = triangle.crop(np.array([5, 5, 20, 20]))
    # what is left of the triangle x + y < 20 inside [5, 20]^2 is the triangle (5,5),(15,5),(5,15)
    assert cropped.areas[0] == pytest.approx(50)
    assert cropped.get_bboxes('hbox').tensor[0].tolist() == [0, 0, 10, 10]


def test_conversions_and_helpers():
    bitmap = square_bitmap().masks[0]
    contours, with_hole = bitmap_to_polygon(bitmap)
    assert len(contours) == 1 and not with_hole
    assert np.array_equal(polygon_to_bitmap([np.array([4, 6, 10, 6, 10, 16, 4, 16])], 20, 30),
                          bitmap.astype(bool))
    ring = np.ones((10, 10), np.uint8)
    ring[3:7, 3:7] = 0
    assert bitmap_to_polygon(ring)[1] is True
    tensors = torch.from_numpy(np.stack([bitmap, np.zeros_like(bitmap)])).bool()
    assert mask2bbox(tensors).tolist() == [[4, 6, 10, 16], [0, 0, 0, 0]]
    assert mask2bbox(torch.zeros(0, 3, 3, dtype=torch.bool)).shape == (0, 4)
    rle = encode_mask_results([bitmap])[0]
    assert rle['size'] == [20, 30]
    split = split_combined_polys([[1, 2, 3, 4, 5, 6]], [[2, 4]], [[2]])
    assert split == [[[[1, 2], [3, 4, 5, 6]]]]
    with pytest.raises(ValueError, match='do not match'):
        BitmapMasks(np.zeros((1, 3, 3)), 4, 4)
    with pytest.raises(TypeError, match='list'):
        PolygonMasks(np.zeros((1, 6)), 4, 4)


def test_random_polygons_take_mmdetections_dtype_argument():
    masks = PolygonMasks.random(num_masks=2, height=20, width=30, n_verts=6, dtype=np.float64)
    assert len(masks) == 2 and all(poly.dtype == np.float64 and poly.size == 12
                                   for obj in masks.masks for poly in obj)
    assert PolygonMasks.random(num_masks=1).masks[0][0].dtype == np.float32
