"""SingleRoIExtractor and RoIAlign on known feature maps."""
import pytest
import torch
from torchvision.ops import roi_align

from detlab.models.roi_heads import RoIAlign, SingleRoIExtractor
from detlab.models.roi_heads.roi_extractors import roi_align as roi_align_module
from detlab.registry import MODELS

STRIDES = [4, 8, 16, 32]


def extractor(**kwargs):
    return MODELS.build(dict(type='SingleRoIExtractor',
                             roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                             out_channels=2, featmap_strides=STRIDES, **kwargs))


def square_rois(scales, centre=256.):
    scales = torch.tensor(scales, dtype=torch.float32)
    half = scales / 2
    return torch.stack([torch.zeros_like(scales), centre - half, centre - half, centre + half,
                        centre + half], dim=1)


def test_map_roi_levels_by_sqrt_area_with_finest_scale_56():
    rois = square_rois([10, 111.9, 112, 223.9, 224, 447.9, 448, 2000])
    assert extractor().map_roi_levels(rois, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    # A non-square RoI counts by its area: 56 x 448 has scale 158.4 -> level 1.
    rect = torch.tensor([[0., 0., 0., 56., 448.]])
    assert extractor().map_roi_levels(rect, 4).tolist() == [1]
    # finest_scale moves the boundaries; the level is clamped to those available.
    assert extractor(finest_scale=28).map_roi_levels(square_rois([56, 112]), 2).tolist() == [1, 1]


def test_each_roi_is_pooled_from_its_level():
    # Level l holds the constant l + 1 in channel 0 and -(l + 1) in channel 1.
    size = 1024  # image pixels; every RoI lies inside
    feats = [torch.stack([torch.full((size // s, size // s), float(l + 1)),
                          torch.full((size // s, size // s), -float(l + 1))])[None]
             for l, s in enumerate(STRIDES)]
    rois = square_rois([40, 150, 300, 600], centre=512.)
    out = extractor()(feats, rois)
    assert out.shape == (4, 2, 7, 7)
    for i, level in enumerate([0, 1, 2, 3]):
        assert torch.allclose(out[i, 0], torch.full((7, 7), level + 1.))
        assert torch.allclose(out[i, 1], torch.full((7, 7), -(level + 1.)))


def test_matches_roi_align_at_each_level_and_keeps_roi_order():
    torch.manual_seed(0)
    feats = [torch.randn(2, 2, 128 // s, 128 // s) for s in STRIDES]
    rois = torch.tensor([[1, 10., 12., 300., 260.], [0, 3., 4., 40., 50.],
                         [1, 20., 30., 150., 170.], [0, 0., 0., 500., 500.]])
    out = extractor()(feats, rois)
    levels = extractor().map_roi_levels(rois, 4)
    assert levels.tolist() == [2, 0, 1, 3]
    for i, level in enumerate(levels.tolist()):
        expected = roi_align(feats[level], rois[i:i + 1], (7, 7), 1 / STRIDES[level], 0, True)
        assert torch.allclose(out[i:i + 1], expected)


def test_aligned_roi_align_samples_pixel_centres():
    """On the ramp f(x, y) = x, bilinear sampling is exact: bin j of a box from x1
    to x2 (image pixels, stride s) averages to (x1 + (j + 0.5) * (x2 - x1) / 7) / s - 0.5
    with ``aligned=True``, the same without the -0.5 shift for ``aligned=False``."""
    ramp = torch.arange(32, dtype=torch.float32).repeat(32, 1)[None, None]  # value = x
    roi = torch.tensor([[0., 16., 24., 72., 80.]])
    bins = 16. + (torch.arange(7) + 0.5) * (72. - 16.) / 7
    for aligned, shift in ((True, 0.5), (False, 0.)):
        layer = RoIAlign(output_size=7, spatial_scale=1 / 4, sampling_ratio=0, aligned=aligned)
        out = layer(ramp, roi)[0, 0]
        assert torch.allclose(out, (bins / 4 - shift).expand(7, 7), atol=1e-5)


def test_empty_rois_single_level_and_rescale():
    feats = [torch.randn(1, 2, 16, 16) for _ in STRIDES]
    assert extractor()(feats, torch.zeros(0, 5)).shape == (0, 2, 7, 7)
    single = MODELS.build(dict(type='SingleRoIExtractor', roi_layer=dict(
        type='RoIAlign', output_size=(3, 5), sampling_ratio=2), out_channels=2,
        featmap_strides=[8]))
    rois = torch.tensor([[0., 8., 8., 64., 64.]])
    assert torch.allclose(single(feats[:1], rois),
                          roi_align(feats[0], rois, (3, 5), 1 / 8, 2, True))
    assert single(feats[:1], torch.zeros(0, 5)).shape == (0, 2, 3, 5)
    rescaled = SingleRoIExtractor.roi_rescale(rois, 2.0)
    assert rescaled.tolist() == [[0., -20., -20., 92., 92.]]


def test_roi_layers_get_the_scale_of_their_level_and_bad_configs_are_named():
    layers = extractor().roi_layers
    assert [layer.spatial_scale for layer in layers] == [1 / s for s in STRIDES]
    assert all(layer.aligned for layer in layers)  # mmcv's default
    with pytest.raises(ValueError, match="pool_mode='avg'"):
        RoIAlign(7, pool_mode='max')
    with pytest.raises(KeyError, match='RoIAlign'):
        extractor_cfg = dict(type='SingleRoIExtractor', roi_layer=dict(type='RoIAlig'),
                             out_channels=2, featmap_strides=STRIDES)
        MODELS.build(extractor_cfg)


def test_threaded_roi_align_gives_torchvisions_values_and_gradient_bit_for_bit(monkeypatch):
    """The RoIs split over two threads (even on one core) pool and back-propagate
    exactly as one torchvision call; autocast keeps the single call."""
    monkeypatch.setattr(roi_align_module, 'MIN_ROIS_PER_THREAD', 2)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        feat = torch.randn(2, 3, 16, 16, requires_grad=True)
        xy = torch.rand(9, 2) * 48
        rois = torch.cat([torch.randint(0, 2, (9, 1)).float(), xy, xy + 1 + torch.rand(9, 2) * 20],
                         dim=1)
        assert roi_align_module.roi_align_threads(feat, rois) == 2
        with torch.autocast('cpu', dtype=torch.bfloat16):
            assert roi_align_module.roi_align_threads(feat, rois) == 1
        layer = RoIAlign(output_size=(3, 4), spatial_scale=1 / 4, sampling_ratio=0)
        out = layer(feat, rois)
        expected = roi_align(feat, rois, (3, 4), 1 / 4, 0, True)
        grad_out = torch.randn_like(out)
        assert torch.equal(out, expected)
        assert torch.equal(torch.autograd.grad(out, feat, grad_out)[0],
                           torch.autograd.grad(expected, feat, grad_out)[0])
    finally:
        torch.set_num_threads(threads)


def test_levels_without_rois_stay_in_the_graph_with_zero_gradient():
    feats = [torch.randn(1, 2, 64 // s, 64 // s, requires_grad=True) for s in STRIDES]
    one_level = square_rois([20, 30], centre=32.)  # both on level 0
    two_levels = square_rois([20, 150], centre=32.)  # levels 0 and 1
    for rois in (one_level, two_levels):
        out = extractor()(feats, rois)
        grads = torch.autograd.grad(out.sum(), feats)
        assert [bool(grad.any()) for grad in grads] == [True, rois is two_levels, False, False]
    with torch.no_grad():  # and without a graph, the pooled features are the same
        assert torch.equal(extractor()(feats, two_levels), out)


def test_backward_keeps_no_copy_of_the_pooled_features():
    # RoIs on every level: the output is filled level by level; what autograd saves for
    # backward is the RoIs and indices, not the pooled features (K x 2 x 7 x 7) again.
    feats = [torch.randn(1, 2, 1024 // s, 1024 // s, requires_grad=True) for s in STRIDES]
    rois = square_rois([16, 80, 120, 250, 500] * 8, centre=512.)  # levels 0 0 1 2 3
    saved = {}

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = extractor()(feats, rois)
    # (index_copy_ would save each level's pooled rows: as many bytes as the output.)
    assert sum(saved.values()) < out.numel() * out.element_size() / 2, saved
    out.square().sum().backward()
    # The gradient still reaches every level (the values are the tests' above).
    assert all(feat.grad is not None and feat.grad.abs().sum() > 0 for feat in feats)


def _pooled_and_grads(monkeypatch, gathers, feats, rois):
    """Features and the gradient of a fixed function of them, each level's
    RoIs gathered (the CPU's path) or every RoI pooled on every level (forced)."""
    from detlab.models.roi_heads.roi_extractors import single_level_roi_extractor as module
    monkeypatch.setattr(module, 'gathers_positives', lambda tensor: gathers)
    out = extractor()(feats, rois)
    weights = torch.linspace(-1, 1, out.numel()).reshape(out.shape)
    return out.detach(), torch.autograd.grad((out * weights).sum(), feats)


def test_pooling_every_level_equals_gathering_each_levels_rois(monkeypatch):
    """Off the CPU each RoI keeps its level's row of every level's pooling:
    the gathered path's features and gradients, for RoIs on every level, on
    some levels, with a NaN RoI (no level: zeros) and without RoIs."""
    generator = torch.Generator().manual_seed(0)
    feats = [torch.randn(2, 2, 256 // s, 256 // s, generator=generator).requires_grad_()
             for s in STRIDES]
    every_level = torch.tensor([[1, 10., 12., 300., 260.], [0, 3., 4., 40., 50.],
                                [1, 20., 30., 150., 170.], [0, 0., 0., 500., 500.],
                                [0, 7., 9., 30., 20.]])
    nan_roi = torch.tensor([[0, 3., 4., 40., 50.], [1, float('nan'), 0., 10., 10.]])
    for rois in (every_level, every_level[1:3], nan_roi, torch.zeros(0, 5)):
        gathered, gathered_grads = _pooled_and_grads(monkeypatch, True, feats, rois)
        dense, dense_grads = _pooled_and_grads(monkeypatch, False, feats, rois)
        assert torch.equal(dense, gathered)
        for gathered_grad, dense_grad in zip(gathered_grads, dense_grads):
            assert torch.allclose(dense_grad, gathered_grad, rtol=1e-5, atol=1e-7)
        if rois is nan_roi:
            assert dense[0].any() and not dense[1].any()
    assert dense.shape == (0, 2, 7, 7)


def test_pooling_every_level_runs_no_syncing_op_and_saves_no_features(monkeypatch):
    from helpers import record_syncing_ops

    from detlab.models.roi_heads.roi_extractors import single_level_roi_extractor as module
    monkeypatch.setattr(module, 'gathers_positives', lambda tensor: False)
    feats = [torch.randn(1, 2, 1024 // s, 1024 // s, requires_grad=True) for s in STRIDES]
    rois = square_rois([16, 80, 120, 250, 500] * 8, centre=512.)
    saved = {}

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with record_syncing_ops() as ops, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = extractor()(feats, rois)
    assert not ops.syncing
    # Backward keeps the RoIs and each level's mask, not the pooled features.
    assert sum(saved.values()) < out.numel() * out.element_size() / 2, saved
