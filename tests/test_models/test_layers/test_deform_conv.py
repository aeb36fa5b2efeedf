"""DCN/DCNv2 compute mmcv's deformable convolution, forward and backward, and keep
mmcv's parameter names, offset layout and initialization."""
import pytest
import torch

from detlab.models.layers.deform_conv import (DeformConv2d, DeformConv2dPack,
                                              ModulatedDeformConv2d,
                                              ModulatedDeformConv2dPack)
from detlab.registry import MODELS


def mmcv_bilinear(feature, h, w):
    """mmcv's ``deformable_im2col_bilinear`` for all points at once, in float64.

    feature (B, C, H, W); h, w (B, P) sampling positions. A point with
    ``h <= -1``, ``h >= H``, ``w <= -1`` or ``w >= W`` reads 0; otherwise the
    four neighbours ``floor(h) + {0, 1}``, ``floor(w) + {0, 1}`` are blended,
    each read as 0 where it falls outside the map. Returns (B, C, P).
    """
    batch, channels, height, width = feature.shape
    inside = (h > -1) & (h < height) & (w > -1) & (w < width)
    h_low, w_low = torch.floor(h), torch.floor(w)
    lh, lw = h - h_low, w - w_low
    hh, hw = 1 - lh, 1 - lw
    flat = feature.reshape(batch, channels, height * width)

    def corner(y, x):
        valid = (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1) & inside
        index = (y.clamp(0, height - 1) * width + x.clamp(0, width - 1)).long()
        values = torch.gather(flat, 2, index[:, None, :].expand(-1, channels, -1))
        return values * valid[:, None, :]

    return (corner(h_low, w_low) * (hh * hw)[:, None] + corner(h_low, w_low + 1) * (hh * lw)[:, None]
            + corner(h_low + 1, w_low) * (lh * hw)[:, None]
            + corner(h_low + 1, w_low + 1) * (lh * lw)[:, None])


def mmcv_deform_conv(x, offset, weight, mask=None, bias=None, stride=1, padding=1, dilation=1):
    """mmcv's deformable_im2col followed by the (grouped) matrix product.

    For output pixel (ho, wo), kernel tap (i, j) and deform group g, the input
    of group g is sampled at ``(ho * stride - padding + i * dilation + dy,
    wo * stride - padding + j * dilation + dx)``, with ``dy`` at offset channel
    ``g * 2 * K + 2 * (i * kw + j)`` and ``dx`` at the next one; DCNv2 scales
    the sample by mask channel ``g * K + i * kw + j``.
    """
    batch, in_channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = weight.shape
    groups = in_channels // in_per_group
    taps = kh * kw
    deform_groups = offset.shape[1] // (2 * taps)
    h_out, w_out = offset.shape[2:]
    base_h = (torch.arange(h_out, dtype=x.dtype) * stride - padding)[:, None].expand(h_out, w_out)
    base_w = (torch.arange(w_out, dtype=x.dtype) * stride - padding)[None, :].expand(h_out, w_out)
    channels_per_dg = in_channels // deform_groups
    columns = x.new_zeros(batch, in_channels, taps, h_out * w_out)
    for g in range(deform_groups):
        feature = x[:, g * channels_per_dg:(g + 1) * channels_per_dg]
        for i in range(kh):
            for j in range(kw):
                k = i * kw + j
                dy = offset[:, g * 2 * taps + 2 * k].reshape(batch, -1)
                dx = offset[:, g * 2 * taps + 2 * k + 1].reshape(batch, -1)
                h = base_h.reshape(1, -1) + i * dilation + dy
                w = base_w.reshape(1, -1) + j * dilation + dx
                sample = mmcv_bilinear(feature, h, w)
                if mask is not None:
                    sample = sample * mask[:, g * taps + k].reshape(batch, 1, -1)
                columns[:, g * channels_per_dg:(g + 1) * channels_per_dg, k] = sample
    columns = columns.reshape(batch, groups, in_per_group * taps, h_out * w_out)
    weight = weight.reshape(groups, out_channels // groups, in_per_group * taps)
    out = torch.einsum('gok,bgkp->bgop', weight, columns).reshape(batch, out_channels, h_out,
                                                                   w_out)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


CASES = [
    dict(stride=1, padding=1, dilation=1, groups=1, deform_groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2, deform_groups=2),
    dict(stride=1, padding=2, dilation=2, groups=1, deform_groups=4),
]


def _inputs(case, modulated, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 8, 9, 7, generator=generator, dtype=torch.float64)
    s, p, d = case['stride'], case['padding'], case['dilation']
    h_out = (9 + 2 * p - d * 2 - 1) // s + 1
    w_out = (7 + 2 * p - d * 2 - 1) // s + 1
    # Offsets of up to +-4 pixels send many taps across the border, where mmcv's
    # boundary rules matter; non-integer, so the bilinear gradient is defined.
    offset = (torch.rand(2, case['deform_groups'] * 18, h_out, w_out, generator=generator,
                         dtype=torch.float64) - 0.5) * 8
    mask = torch.rand(2, case['deform_groups'] * 9, h_out, w_out, generator=generator,
                      dtype=torch.float64) if modulated else None
    return x, offset, mask


@pytest.mark.parametrize('modulated', [False, True], ids=['DCN', 'DCNv2'])
@pytest.mark.parametrize('case', CASES, ids=['plain', 'strided-grouped', 'dilated-dg4'])
def test_forward_and_gradients_equal_mmcvs_formula(case, modulated):
    layer_cls = ModulatedDeformConv2d if modulated else DeformConv2d
    layer = layer_cls(8, 6, 3, stride=case['stride'], padding=case['padding'],
                      dilation=case['dilation'], groups=case['groups'],
                      deform_groups=case['deform_groups']).double()
    if modulated:
        torch.nn.init.normal_(layer.bias)
    x, offset, mask = _inputs(case, modulated)
    tensors = [x, offset] + ([mask] if modulated else [])
    for t in tensors:
        t.requires_grad_(True)
    out = layer(*tensors)
    bias = layer.bias if modulated else None
    want = mmcv_deform_conv(x, offset, layer.weight, mask, bias, case['stride'],
                            case['padding'], case['dilation'])
    assert out.shape == want.shape
    assert torch.allclose(out, want, atol=1e-10)
    # Some taps fall outside the map: the boundary rules are exercised.
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1),
                           dtype=torch.float64)
    params = [layer.weight] + ([layer.bias] if modulated else [])
    got_grads = torch.autograd.grad((out * upstream).sum(), tensors + params)
    want_grads = torch.autograd.grad((want * upstream).sum(), tensors + params)
    for got, ref in zip(got_grads, want_grads):
        assert torch.allclose(got, ref, atol=1e-8)


def test_mmcv_reference_reads_zero_outside_and_blends_inside():
    feature = torch.arange(12., dtype=torch.float64).reshape(1, 1, 3, 4)
    h = torch.tensor([[-1.0, 3.0, -0.5, 1.25, 2.5]], dtype=torch.float64)
    w = torch.tensor([[0.0, 0.0, 0.0, 2.5, 3.0]], dtype=torch.float64)
    values = mmcv_bilinear(feature, h, w)[0, 0]
    # -1 and 3 (== H) are outside; -0.5 blends row 0 with weight 0.5 and a zero row.
    assert values.tolist() == pytest.approx([0.0, 0.0, 0.0, 0.5 * 0.0 + 7.5, 0.5 * 11.0])


def test_pack_layers_have_mmcv_names_shapes_and_init():
    dcn = MODELS.build(dict(type='DCN', in_channels=8, out_channels=16, kernel_size=3,
                            padding=1, deform_groups=2))
    assert isinstance(dcn, DeformConv2dPack)
    assert {k: tuple(v.shape) for k, v in dcn.state_dict().items()} == {
        'weight': (16, 8, 3, 3), 'conv_offset.weight': (36, 8, 3, 3), 'conv_offset.bias': (36,)}
    dcnv2 = MODELS.build(dict(type='DCNv2', in_channels=8, out_channels=16, kernel_size=3,
                              padding=1, deform_groups=1, bias=False))
    assert {k: tuple(v.shape) for k, v in dcnv2.state_dict().items()} == {
        'weight': (16, 8, 3, 3), 'conv_offset.weight': (27, 8, 3, 3), 'conv_offset.bias': (27,)}
    x = torch.randn(1, 8, 6, 6)
    # Zero offsets (and masks of 0.5 for DCNv2): a plain convolution at first.
    conv = torch.nn.functional.conv2d(x, dcn.weight, padding=1)
    assert torch.allclose(dcn(x), conv, atol=1e-5)
    assert torch.allclose(dcnv2(x), 0.5 * torch.nn.functional.conv2d(x, dcnv2.weight, padding=1),
                          atol=1e-5)
    bound = 1 / (8 * 9)**0.5
    assert dcnv2.weight.abs().max() <= bound


def test_dcnv2_splits_conv_offset_into_offsets_and_mask_logits():
    layer = ModulatedDeformConv2dPack(4, 4, 3, padding=1).double()
    torch.nn.init.normal_(layer.conv_offset.weight, std=0.3)
    torch.nn.init.normal_(layer.conv_offset.bias)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    raw = layer.conv_offset(x)
    offset, mask = raw[:, :18], torch.sigmoid(raw[:, 18:])
    want = mmcv_deform_conv(x, offset, layer.weight, mask, layer.bias)
    assert torch.allclose(layer(x), want, atol=1e-10)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match='bias=True is not available'):
        DeformConv2d(4, 4, 3, bias=True)
    with pytest.raises(ValueError, match='divisible by deform_groups 3'):
        DeformConv2dPack(4, 4, 3, deform_groups=3)
