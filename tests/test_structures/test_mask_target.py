"""Mask targets: torchvision's roi_align gives what mmcv's compiled RoIAlign gives.

MMDetection cuts mask targets with mmcv's ``roi_align`` (its CPU kernel,
mmcv/ops/csrc/pytorch/cpu/roi_align.cpp, average mode); detlab uses
torchvision's. ``mmcv_roi_align_avg`` below follows mmcv's kernel step by step
in float32 (sample positions, clamping at the border, bilinear weights, the sum
in order, division by the count), so the two can be compared without mmcv's
compiled extension.
"""
import numpy as np
import pytest
import torch
from torchvision.ops import roi_align

from detlab.structures.mask import BitmapMasks, mask_target

f32 = np.float32


def bilinear(img: np.ndarray, y: np.float32, x: np.float32) -> np.float32:
    height, width = img.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return f32(0)
    y, x = max(y, f32(0)), max(x, f32(0))
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = f32(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = f32(x_low)
    else:
        x_high = x_low + 1
    ly, lx = f32(y - y_low), f32(x - x_low)
    hy, hx = f32(1 - ly), f32(1 - lx)
    return f32(f32(f32(hy * hx) * img[y_low, x_low] + f32(hy * lx) * img[y_low, x_high]) +
               f32(ly * hx) * img[y_high, x_low] + f32(ly * lx) * img[y_high, x_high])


def mmcv_roi_align_avg(img: np.ndarray, box, out_size: int) -> np.ndarray:
    """mmcv's CPU RoIAlign (avg, aligned=True, sampling_ratio=0, scale 1) of one box."""
    start_w, start_h, end_w, end_h = (f32(v) - f32(0.5) for v in box)
    roi_w, roi_h = f32(end_w - start_w), f32(end_h - start_h)
    bin_h, bin_w = f32(roi_h / f32(out_size)), f32(roi_w / f32(out_size))
    grid_h, grid_w = int(np.ceil(roi_h / f32(out_size))), int(np.ceil(roi_w / f32(out_size)))
    count = f32(max(grid_h * grid_w, 1))
    out = np.zeros((out_size, out_size), dtype=f32)
    for ph in range(out_size):
        for pw in range(out_size):
            total = f32(0)
            for iy in range(grid_h):
                y = f32(f32(start_h + f32(ph * bin_h)) +
                        f32(f32(f32(iy + 0.5) * bin_h) / f32(grid_h)))
                for ix in range(grid_w):
                    x = f32(f32(start_w + f32(pw * bin_w)) +
                            f32(f32(f32(ix + 0.5) * bin_w) / f32(grid_w)))
                    total = f32(total + bilinear(img, y, x))
            out[ph, pw] = f32(total / count)
    return out


def test_torchvision_roi_align_equals_mmcvs_kernel_on_masks():
    rng = np.random.default_rng(0)
    masks = (rng.random((3, 40, 56)) > 0.5).astype(np.float32)
    boxes = np.array([[3.3, 4.7, 30.1, 22.9], [0., 0., 56., 40.], [50.2, 35.5, 56., 40.],
                      [10.25, 12.75, 10.9, 13.1], [-0.0, 5.5, 7.0, 39.99]], dtype=np.float32)
    inds = [0, 1, 2, 0, 1]
    out_size = 14
    rois = torch.cat([torch.arange(len(boxes), dtype=torch.float32)[:, None],
                      torch.from_numpy(boxes)], dim=1)
    selected = torch.from_numpy(masks[inds])[:, None]
    ours = roi_align(selected, rois, (out_size, out_size), 1.0, 0, True)[:, 0].numpy()
    for i, (box, ind) in enumerate(zip(boxes, inds)):
        reference = mmcv_roi_align_avg(masks[ind], box, out_size)
        np.testing.assert_array_equal(ours[i], reference)  # to the last bit
        assert np.array_equal(ours[i] >= 0.5, reference >= 0.5)


def test_mask_target_uses_the_same_cut():
    rng = np.random.default_rng(1)
    bitmaps = (rng.random((2, 24, 32)) > 0.4).astype(np.uint8)
    boxes = torch.tensor([[2.5, 3.5, 20.25, 17.0], [-4., 1., 40., 30.]])  # the second is clipped
    targets = mask_target([boxes], [torch.tensor([1, 0])], [BitmapMasks(bitmaps, 24, 32)],
                          dict(mask_size=7))
    clipped = [[2.5, 3.5, 20.25, 17.0], [0., 1., 32., 24.]]
    for target, box, ind in zip(targets, clipped, [1, 0]):
        reference = mmcv_roi_align_avg(bitmaps[ind].astype(np.float32), box, 7) >= 0.5
        assert np.array_equal(target.numpy().astype(bool), reference)


@pytest.mark.parametrize('soft', [False, True])
def test_soft_targets_keep_the_fractions(soft):
    bitmaps = np.zeros((1, 8, 8), dtype=np.uint8)
    bitmaps[0, :, :3] = 1
    targets = mask_target([torch.tensor([[0., 0., 8., 8.]])], [torch.tensor([0])],
                          [BitmapMasks(bitmaps, 8, 8)], dict(mask_size=2, soft_mask_target=soft))
    expected = [[0.75, 0.], [0.75, 0.]] if soft else [[1., 0.], [1., 0.]]
    assert targets[0].tolist() == expected
