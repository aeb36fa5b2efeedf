"""DeformRoIPool and its Pack modules compute mmcv's deform_roi_pool kernel, forward and
backward, and keep mmcv's module structure, parameter names and initialisation."""
import math

import pytest
import torch
from torchvision.ops import roi_align

from helpers import mmcv_deform_roi_pool_module
from detlab.models.roi_heads.roi_extractors import (DeformRoIPool, DeformRoIPoolPack,
                                                    ModulatedDeformRoIPoolPack, deform_roi_pool)
from detlab.registry import MODELS


def kernel_bilinear(feature, height, width, y, x):
    """mmcv's ``bilinear_interpolate_gradient``: (w1..w4, y_low, x_low, y_high, x_high), or
    None for a sample outside the map."""
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return None
    y = max(y, 0.)
    x = max(x, 0.)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1. - ly, 1. - lx
    return (hy * hx, hy * lx, ly * hx, ly * lx), (y_low, x_low, y_high, x_high)


def kernel_pool(input, rois, offset, output_size, spatial_scale, sampling_ratio, gamma,
                grad_output=None):
    """mmcv's deform_roi_pool_{forward,backward}_cuda_kernel, one output element at a time,
    in float64. Returns the output, or with ``grad_output`` (grad_input, grad_offset)."""
    input = input.double()
    _, channels, height, width = input.shape
    pooled_h, pooled_w = output_size
    out = torch.zeros(rois.size(0), channels, pooled_h, pooled_w, dtype=torch.float64)
    grad_input = torch.zeros_like(input)
    grad_offset = None if offset is None else torch.zeros_like(offset, dtype=torch.float64)
    for n, roi in enumerate(rois.double().tolist()):
        batch = int(roi[0])
        roi_start_w = roi[1] * spatial_scale - 0.5
        roi_start_h = roi[2] * spatial_scale - 0.5
        roi_end_w = roi[3] * spatial_scale - 0.5
        roi_end_h = roi[4] * spatial_scale - 0.5
        roi_width, roi_height = roi_end_w - roi_start_w, roi_end_h - roi_start_h
        bin_h, bin_w = roi_height / pooled_h, roi_width / pooled_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_height / pooled_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_width / pooled_w)
        for c in range(channels):
            feature = input[batch, c]
            for ph in range(pooled_h):
                for pw in range(pooled_w):
                    start_w, start_h = roi_start_w, roi_start_h
                    if offset is not None:
                        start_w += gamma * roi_width * offset[n, 0, ph, pw].item()
                        start_h += gamma * roi_height * offset[n, 1, ph, pw].item()
                    count = max(grid_h * grid_w, 1)
                    total = 0.
                    for iy in range(grid_h):
                        y = start_h + ph * bin_h + (iy + .5) * bin_h / grid_h
                        for ix in range(grid_w):
                            x = start_w + pw * bin_w + (ix + .5) * bin_w / grid_w
                            found = kernel_bilinear(feature, height, width, y, x)
                            if found is None:
                                continue
                            (w1, w2, w3, w4), (yl, xl, yh, xh) = found
                            v1, v2 = feature[yl, xl].item(), feature[yl, xh].item()
                            v3, v4 = feature[yh, xl].item(), feature[yh, xh].item()
                            total += w1 * v1 + w2 * v2 + w3 * v3 + w4 * v4
                            if grad_output is None:
                                continue
                            g = grad_output[n, c, ph, pw].item() / count
                            for w, (r, q) in zip((w1, w2, w3, w4),
                                                 ((yl, xl), (yl, xh), (yh, xl), (yh, xh))):
                                grad_input[batch, c, r, q] += g * w
                            if offset is not None:
                                grad_offset[n, 0, ph, pw] += gamma * roi_width * g * (
                                    v4 * (y - yl) + v2 * (yh - y) + v3 * (yl - y) + v1 * (y - yh))
                                grad_offset[n, 1, ph, pw] += gamma * roi_height * g * (
                                    v4 * (x - xl) + v3 * (xh - x) + v2 * (xl - x) + v1 * (x - xh))
                    out[n, c, ph, pw] = total / count
    return out if grad_output is None else (grad_input, grad_offset)


#: (K, 5) RoIs on a 2 x 9 x 11 map at spatial_scale 0.5: inside, crossing every border,
#: wholly outside, thinner than a bin, inverted (no samples), and of exactly integer bins
#: (width 14 px = 7 feature px over 7 / 3.5 samples).
ROIS = torch.tensor([[0, 2.0, 3.0, 15.0, 12.0],
                     [1, -4.0, -3.0, 9.0, 25.0],
                     [0, 10.0, 8.0, 30.0, 21.0],
                     [1, 40.0, 2.0, 48.0, 6.0],
                     [0, 6.0, 6.0, 6.6, 7.0],
                     [1, 12.0, 10.0, 5.0, 4.0],
                     [0, 1.0, 1.0, 15.0, 15.0]])


def features(seed=0, shape=(2, 3, 9, 11)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def offsets(num, output_size, scale, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num, 2, *output_size, generator=generator) * scale


@pytest.mark.parametrize('output_size,sampling_ratio', [((3, 3), 0), ((2, 3), 2), ((4, 2), 0)])
def test_without_offsets_equals_the_kernel_and_roi_align(output_size, sampling_ratio):
    x = features()
    got = deform_roi_pool(x, ROIS, None, output_size, 0.5, sampling_ratio)
    want = kernel_pool(x, ROIS, None, output_size, 0.5, sampling_ratio, 0.1)
    assert torch.allclose(got.double(), want, atol=1e-6)
    if sampling_ratio == 0:
        assert got[5].abs().max() == 0  # the inverted RoI has no adaptive samples
    # A zero offset changes nothing; with no offset the kernel is RoIAlign's aligned=True.
    zero = torch.zeros(len(ROIS), 2, *output_size)
    assert torch.allclose(deform_roi_pool(x, ROIS, zero, output_size, 0.5, sampling_ratio), got,
                          atol=1e-6)
    assert torch.allclose(got, roi_align(x, ROIS, output_size, 0.5, sampling_ratio, True),
                          atol=1e-6)


@pytest.mark.parametrize('output_size,sampling_ratio,gamma', [((3, 3), 0, 0.1), ((2, 3), 3, 0.3)])
def test_with_offsets_equals_the_kernel(output_size, sampling_ratio, gamma):
    x = features()
    # Offsets of up to about +-1.5 RoI sizes at gamma 0.3 send bins across every border.
    offset = offsets(len(ROIS), output_size, 2.0)
    got = deform_roi_pool(x, ROIS, offset, output_size, 0.5, sampling_ratio, gamma)
    want = kernel_pool(x, ROIS, offset, output_size, 0.5, sampling_ratio, gamma)
    assert torch.allclose(got.double(), want, atol=1e-6)
    moved = ~torch.isclose(want, kernel_pool(x, ROIS, None, output_size, 0.5, sampling_ratio,
                                             gamma))
    assert moved.float().mean() > 0.5  # the offsets matter


@pytest.mark.parametrize('with_offset', [False, True])
def test_gradients_are_the_kernels_including_at_the_border(with_offset):
    x = features().requires_grad_()
    output_size = (3, 2)
    offset = offsets(len(ROIS), output_size, 2.0).requires_grad_() if with_offset else None
    grad_output = torch.randn(len(ROIS), 3, *output_size,
                              generator=torch.Generator().manual_seed(2))
    deform_roi_pool(x, ROIS, offset, output_size, 0.5, 0, 0.2).backward(grad_output)
    grad_input, grad_offset = kernel_pool(x.detach(), ROIS, None if offset is None else
                                          offset.detach(), output_size, 0.5, 0, 0.2, grad_output)
    assert torch.allclose(x.grad.double(), grad_input, atol=1e-5)
    if with_offset:
        assert torch.allclose(offset.grad.double(), grad_offset, atol=1e-5)


def test_offset_gradient_along_the_last_row_is_mmcvs_zero():
    # One 1x1 bin whose samples all lie past the last row (y >= H - 1, read at row H - 1):
    # the value changes with x, but mmcv's gradient to the x offset is 0 there.
    x = torch.arange(20.).view(1, 1, 4, 5)
    rois = torch.tensor([[0, 1.0, 4.0, 3.0, 4.4]])
    offset = torch.zeros(1, 2, 1, 1, requires_grad=True)
    out = deform_roi_pool(x, rois, offset, 1, 1.0, 1, 0.1)
    out.sum().backward()
    assert out.item() == pytest.approx(16.5)  # row 3 at x = 1.5
    assert offset.grad[0, 0].item() == 0
    shifted = deform_roi_pool(x, rois, torch.tensor([[[[1.]], [[0.]]]]), 1, 1.0, 1, 0.1)
    assert shifted.item() == pytest.approx(16.7)  # but the value does move with x


def test_gradcheck_inside_the_map():
    # Samples stay inside [0, H - 1] x [0, W - 1] and off integer coordinates, where
    # mmcv's gradient is the derivative of its forward.
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 2.3, 1.9, 8.1, 7.1]], dtype=torch.float64)
    offset = (torch.randn(1, 2, 2, 2, dtype=torch.float64) * 0.2).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda f, o: deform_roi_pool(f, rois, o, 2, 0.7, 2, 0.1), (x, offset))


def test_empty_rois_channels_last_and_bfloat16():
    x = features().requires_grad_()
    assert deform_roi_pool(x, ROIS[:0], None, 3, 0.5).shape == (0, 3, 3, 3)
    # RoIs without a sample pool to 0 and still backpropagate (zeros).
    offset = torch.ones(1, 2, 3, 3, requires_grad=True)
    empty = deform_roi_pool(x, ROIS[5:6], offset, 3, 0.5)
    empty.sum().backward()
    assert empty.abs().max() == 0 and offset.grad.abs().max() == 0
    assert x.grad.abs().max() == 0
    x = x.detach()
    # RoIs with a non-finite corner pool to 0, with finite (zero) gradients.
    nan_and_inf = torch.tensor([[0, float('nan'), 1., 9., 9.], [0, 1., 1., float('inf'), 9.]])
    offset = torch.ones(2, 2, 3, 3, requires_grad=True)
    out = deform_roi_pool(x, nan_and_inf, offset, 3, 0.5)
    out.sum().backward()
    assert out.abs().max() == 0 and offset.grad.abs().max() == 0
    want = deform_roi_pool(x, ROIS, offsets(len(ROIS), (3, 3), 1.0), 3, 0.5)
    last = x.to(memory_format=torch.channels_last)
    assert torch.allclose(deform_roi_pool(last, ROIS, offsets(len(ROIS), (3, 3), 1.0), 3, 0.5),
                          want, atol=1e-6)
    half = deform_roi_pool(x.bfloat16(), ROIS, offsets(len(ROIS), (3, 3), 1.0), 3, 0.5)
    assert half.dtype == torch.bfloat16
    assert torch.allclose(half.float(), want, atol=0.05, rtol=0.02)


def test_bad_inputs_name_what_is_wrong():
    x = features()
    with pytest.raises(ValueError, match=r'rois must be \(K, 5\)'):
        deform_roi_pool(x, ROIS[:, 1:], None, 3)
    with pytest.raises(ValueError, match='offset must have shape'):
        deform_roi_pool(x, ROIS, torch.zeros(len(ROIS), 2, 2, 2), 3)
    with pytest.raises(ValueError, match='output_channels=4 expects'):
        DeformRoIPoolPack(3, 4, 8)(x, ROIS)


@pytest.mark.parametrize('name', ['DeformRoIPoolPack', 'ModulatedDeformRoIPoolPack'])
def test_packs_have_mmcvs_names_shapes_init_and_forward(name, monkeypatch):
    mmcv_module = mmcv_deform_roi_pool_module()
    torch.manual_seed(0)
    theirs = getattr(mmcv_module, name)((3, 2), 3, 16, 0.5, 0, 0.2)
    torch.manual_seed(0)
    ours = MODELS.build(dict(type=name, output_size=(3, 2), output_channels=3,
                             deform_fc_channels=16, spatial_scale=0.5, gamma=0.2))
    theirs_state, ours_state = theirs.state_dict(), ours.state_dict()
    assert list(ours_state) == list(theirs_state)
    for key, value in theirs_state.items():
        assert torch.equal(ours_state[key], value), key  # same layers, same draws
    assert [type(m).__name__ for m in ours.modules()] == \
        [type(m).__name__ for m in theirs.modules()]
    assert ours_state['offset_fc.4.weight'].abs().max() == 0
    # mmcv's forward with this kernel: the same composition of pooling, fcs and mask.
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for value in theirs.state_dict().values():
            value.copy_(torch.randn(value.shape, generator=generator) * 0.3)
    ours.load_state_dict(theirs.state_dict())
    monkeypatch.setattr(mmcv_module, 'deform_roi_pool', deform_roi_pool)
    x = features()
    assert torch.allclose(ours(x, ROIS), theirs(x, ROIS), atol=1e-6)


def test_deform_roi_pool_module_takes_offsets_and_reads_like_mmcvs():
    layer = MODELS.build(dict(type='DeformRoIPool', output_size=3, spatial_scale=0.5, gamma=0.2))
    assert isinstance(layer, DeformRoIPool)
    assert 'gamma=0.2' in repr(layer)
    x, offset = features(), offsets(len(ROIS), (3, 3), 1.0)
    assert torch.allclose(layer(x, ROIS, offset),
                          deform_roi_pool(x, ROIS, offset, 3, 0.5, 0, 0.2))
    assert not isinstance(layer, (DeformRoIPoolPack, ModulatedDeformRoIPoolPack))
