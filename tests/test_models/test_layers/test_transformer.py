"""The DETR family's layers: deformable attention against mmcv's PyTorch formulation,
positional encodings, the CDN query generator and the decoder's references."""
import pytest
import torch

from helpers import deformable_attn_inputs as random_inputs
from helpers import mmcv_deformable_attn_reference
from detlab.models.layers import (CdnQueryGenerator, LearnedPositionalEncoding,
                                  MultiScaleDeformableAttention, SinePositionalEncoding,
                                  coordinate_to_encoding, inverse_sigmoid)
from detlab.models.layers.transformer import multi_scale_deformable_attn
from detlab.structures import DetDataSample


@pytest.fixture(scope='module')
def mmcv_fallback():
    """mmcv's ``multi_scale_deformable_attn_pytorch``."""
    return mmcv_deformable_attn_reference()


# Queries as many as the value positions take grid_sample's path (the encoders), other
# numbers of queries the gather path (the decoders).
@pytest.mark.parametrize('bs,shapes,heads,points,queries', [
    (2, [(7, 9), (4, 5), (2, 3)], 4, 3, 11),
    (1, [(12, 10), (6, 5), (3, 3), (2, 2)], 8, 4, 11),
    (3, [(5, 6)], 2, 1, 11),
    (2, [(4, 5), (2, 3)], 4, 3, 26),
    (1, [(6, 5), (3, 3), (2, 2)], 8, 4, 43),
    (1, [(3, 3), (2, 2)], 2, 2, 20),
])
def test_deformable_attention_equals_mmcvs_with_gradients(mmcv_fallback, bs, shapes, heads,
                                                          points, queries):
    (value, locations, weights), spatial_shapes = random_inputs(bs, shapes, heads, 8, queries,
                                                                points)
    expected = mmcv_fallback(value, spatial_shapes, locations, weights)
    got = multi_scale_deformable_attn(value, spatial_shapes, locations, weights)
    assert got.shape == (bs, queries, heads * 8)
    if queries == value.shape[1]:
        assert torch.equal(got, expected)  # mmcv's forward, bit for bit
    else:
        assert not torch.equal(got, expected)  # the gather path sums in another order
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, (value, locations, weights), grad_out)
    got_grads = torch.autograd.grad(got, (value, locations, weights), grad_out)
    for name, g, e in zip(('value', 'locations', 'weights'), got_grads, expected_grads):
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-5), name
        assert g.abs().sum() > 0, name


def test_deformable_attention_gather_path_at_corners_and_edges(mmcv_fallback):
    """Points on pixel centres, on the map's borders and half a pixel beyond
    them, where a corner's weight is exactly 0 or 1 or the floor changes."""
    shapes = [(4, 6), (2, 3)]
    (value, _, _), spatial_shapes = random_inputs(2, shapes, 2, 8, 5, 4)
    gen = torch.Generator().manual_seed(1)
    # Multiples of 1/12 put x on pixel centres, edges and beyond at both levels.
    steps = torch.randint(-2, 15, (2, 5, 2, 2, 4, 2), generator=gen) / 12
    locations = steps.requires_grad_()
    weights = torch.rand(2, 5, 2, 2, 4, generator=gen).softmax(-1).requires_grad_()
    expected = mmcv_fallback(value, spatial_shapes, locations, weights)
    got = multi_scale_deformable_attn(value, spatial_shapes, locations, weights)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    grad_out = torch.randn_like(expected)
    for name, g, e in zip(('value', 'locations', 'weights'),
                          torch.autograd.grad(got, (value, locations, weights), grad_out),
                          torch.autograd.grad(expected, (value, locations, weights), grad_out)):
        assert torch.allclose(g, e, rtol=1e-5, atol=1e-5), name


def test_deformable_attention_gather_path_takes_a_half_value_with_float_weights(mmcv_fallback):
    (value, locations, weights), spatial_shapes = random_inputs(1, [(4, 5), (2, 3)], 2, 8, 7, 2)
    half = value.detach().bfloat16()
    got = multi_scale_deformable_attn(half, spatial_shapes, locations, weights)
    expected = mmcv_fallback(half.float(), spatial_shapes, locations, weights)
    assert got.dtype == torch.float32
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_deformable_attention_gather_path_backward_in_bf16(mmcv_fallback):
    """bf16 value, locations and weights (a decoder under CPU autocast, whose softmax stays
    bf16): the gather path's backward runs (its sparse dots in float32) and gives the float
    reference's gradients on the same bf16 inputs to bf16 rounding."""
    (value, locations, weights), spatial_shapes = random_inputs(1, [(4, 5), (2, 3)], 2, 8, 7, 2)
    low = [t.detach().bfloat16().requires_grad_() for t in (value, locations, weights)]
    high = [t.detach().float().requires_grad_() for t in low]
    got = multi_scale_deformable_attn(low[0], spatial_shapes, *low[1:])
    expected = mmcv_fallback(high[0], spatial_shapes, *high[1:])
    assert got.dtype == torch.bfloat16
    grad_out = torch.randn_like(expected)
    got_grads = torch.autograd.grad(got, low, grad_out.bfloat16())
    for name, g, e in zip(('value', 'locations', 'weights'), got_grads,
                          torch.autograd.grad(expected, high, grad_out)):
        assert g.dtype == torch.bfloat16, name
        assert (g.float() - e).norm() <= 2e-2 * e.norm(), name


def test_deformable_attention_rejects_shapes_that_do_not_cover_the_values():
    (value, locations, weights), _ = random_inputs(1, [(4, 4), (2, 2)], 2, 4, 3, 2)
    with pytest.raises(ValueError, match='value_spatial_shapes'):
        multi_scale_deformable_attn(value, torch.tensor([[4, 4], [2, 3]]), locations, weights)


def test_module_has_mmcvs_parameter_names_and_init():
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=4, num_levels=2, num_points=3,
                                         batch_first=True)
    assert set(attn.state_dict()) == {f'{name}.{p}' for name in (
        'sampling_offsets', 'attention_weights', 'value_proj', 'output_proj')
        for p in ('weight', 'bias')}
    assert attn.sampling_offsets.out_features == 4 * 2 * 3 * 2
    offsets = attn.sampling_offsets.bias.view(4, 2, 3, 2)
    # Head 0 looks right (+x), its points 1, 2, 3 pixels away; all levels alike.
    assert offsets[0, 0, :, 0].tolist() == [1.0, 2.0, 3.0] and (offsets[0, :, :, 1] == 0).all()
    assert torch.equal(offsets[:, 0], offsets[:, 1])
    assert (attn.attention_weights.weight == 0).all()


@pytest.mark.parametrize('ref_dim', [2, 4])
def test_module_forward_is_residual_and_masks_padding(ref_dim):
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=16, num_heads=2, num_levels=2, num_points=2,
                                         dropout=0.0, batch_first=True)
    spatial_shapes = torch.tensor([[4, 4], [2, 2]])
    value = torch.randn(2, 20, 16)
    query = torch.randn(2, 5, 16)
    refs = torch.rand(2, 5, 2, ref_dim) * 0.5 + 0.25
    out = attn(query, value=value, reference_points=refs, spatial_shapes=spatial_shapes,
               level_start_index=torch.tensor([0, 16]))
    assert out.shape == query.shape
    # With every value masked the attention adds only output_proj's bias.
    mask = torch.ones(2, 20, dtype=torch.bool)
    masked = attn(query, value=value, key_padding_mask=mask, reference_points=refs,
                  spatial_shapes=spatial_shapes)
    assert torch.allclose(masked, query + attn.output_proj.bias, atol=1e-6)
    with pytest.raises(ValueError, match='reference_points'):
        attn(query, value=value, reference_points=refs[..., :1], spatial_shapes=spatial_shapes)


def test_sine_encoding_of_an_unpadded_mask_equals_the_input_shaped_one():
    enc = SinePositionalEncoding(num_feats=8, normalize=True)
    feat = torch.zeros(2, 16, 5, 7)
    from_input = enc(None, input=feat)
    from_mask = enc(torch.zeros(2, 5, 7, dtype=torch.bool))
    assert from_input.shape == (2, 16, 5, 7)
    assert torch.allclose(from_input, from_mask)
    # y first: channel 0 is sin of the row position, constant along a row.
    assert torch.allclose(from_input[0, 0], from_input[0, 0, :, :1].expand(5, 7))
    padded = torch.zeros(1, 5, 7, dtype=torch.bool)
    padded[:, :, 4:] = True  # the encoding normalises by the unpadded width
    assert not torch.allclose(enc(padded)[0, 8:, :, :4], from_input[0, 8:, :, :4])
    with pytest.raises(ValueError, match='mask or an input'):
        enc(None)


def test_learned_encoding_shape_and_limit():
    enc = LearnedPositionalEncoding(num_feats=4, row_num_embed=6, col_num_embed=5)
    pos = enc(torch.zeros(2, 3, 5))
    assert pos.shape == (2, 8, 3, 5)
    assert torch.equal(pos[0, :4, 1, 2], enc.col_embed.weight[2])
    assert torch.equal(pos[0, 4:, 1, 2], enc.row_embed.weight[1])
    with pytest.raises(ValueError, match='row_num_embed'):
        enc(torch.zeros(1, 7, 5))


def test_inverse_sigmoid_and_coordinate_encoding():
    x = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(inverse_sigmoid(x)[1:3].sigmoid(), x[1:3])
    assert torch.isfinite(inverse_sigmoid(x)).all()
    boxes = torch.rand(2, 3, 4)
    enc = coordinate_to_encoding(boxes, num_feats=16)
    assert enc.shape == (2, 3, 64)
    assert torch.equal(enc[..., :32], coordinate_to_encoding(boxes[..., :2], num_feats=16))
    # y comes first: it matches the x encoding of the swapped point.
    assert torch.equal(enc[..., :16], coordinate_to_encoding(boxes[..., [1, 0]],
                                                             num_feats=16)[..., 16:])


def sample_with(boxes, labels, shape=(100, 200)):
    from mmengine.structures import InstanceData
    sample = DetDataSample(metainfo=dict(img_shape=shape))
    sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                                       labels=torch.tensor(labels))
    return sample


def test_cdn_queries_groups_and_mask():
    torch.manual_seed(0)
    gen = CdnQueryGenerator(num_classes=5, embed_dims=8, num_matching_queries=4,
                            group_cfg=dict(dynamic=True, num_dn_queries=6))
    samples = [sample_with([[10, 10, 50, 40], [100, 20, 180, 90], [0, 0, 20, 20]], [1, 2, 3]),
               sample_with([[30, 30, 60, 60]], [4])]
    label_query, bbox_query, mask, meta = gen(samples)
    # 3 gts at most -> 6 // 3 = 2 groups of (3 positives + 3 negatives).
    assert meta == dict(num_denoising_queries=12, num_denoising_groups=2)
    assert label_query.shape == (2, 12, 8) and bbox_query.shape == (2, 12, 4)
    # Image 1 has one gt: its slots 1, 2 (and 4, 5, ...) are padding zeros.
    assert (label_query[1, 1:3] == 0).all() and (label_query[1, 0] != 0).any()
    assert mask.shape == (16, 16)
    assert mask[12:, :12].all() and not mask[12:, 12:].any()  # matching queries see only theirs
    assert not mask[:6, :6].any() and mask[:6, 6:12].all() and mask[6:12, :6].all()
    assert not mask[:12, 12:].any()
    # Positive boxes stay within half their size of the gt; negatives move further.
    pos = bbox_query[0, 0].sigmoid()
    assert torch.allclose(pos, torch.tensor([0.15, 0.25, 0.2, 0.3]), atol=0.2)
    with pytest.raises(TypeError, match='num_groups'):
        CdnQueryGenerator(num_classes=5, embed_dims=8, num_matching_queries=4,
                          group_cfg=dict(dynamic=False))


def test_encoder_activation_checkpointing_gives_the_same_outputs_and_gradients():
    from detlab.models.layers import DetrTransformerEncoder
    layer_cfg = dict(self_attn_cfg=dict(embed_dims=16, num_heads=2, dropout=0.0),
                     ffn_cfg=dict(embed_dims=16, feedforward_channels=32, ffn_drop=0.0))
    torch.manual_seed(0)
    plain = DetrTransformerEncoder(num_layers=3, layer_cfg=layer_cfg)
    checkpointed = DetrTransformerEncoder(num_layers=3, layer_cfg=layer_cfg, num_cp=2)
    checkpointed.load_state_dict(plain.state_dict())
    query, pos = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
    outs = []
    for encoder in (plain, checkpointed):
        encoder.train()
        out = encoder(query=query, query_pos=pos, key_padding_mask=None)
        out.sum().backward()
        outs.append((out, encoder.layers[0].self_attn.attn.in_proj_weight.grad))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-6)
    assert torch.allclose(outs[0][1], outs[1][1], atol=1e-6)
    with pytest.raises(ValueError, match='num_cp'):
        DetrTransformerEncoder(num_layers=1, layer_cfg=layer_cfg, num_cp=2)
