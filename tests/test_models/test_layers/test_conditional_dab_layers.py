"""Conditional DETR's and DAB-DETR's layers: ConditionalAttention, their decoders' keys,
anchor refinement, the query-scale variants and DABDETR's pattern queries. Their numbers
against MMDetection's are pinned in test_detectors/test_detr_family.py."""
import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT
from detlab.models.layers import (ConditionalAttention, ConditionalDetrTransformerDecoder,
                                  DABDetrTransformerDecoder, MLP, inverse_sigmoid)
from detlab.registry import MODELS

DIMS, HEADS = 16, 2


def attn_cfg(cross):
    return dict(embed_dims=DIMS, num_heads=HEADS, cross_attn=cross)


def decoder_cfg(num_layers=3, **layer_kwargs):
    return dict(num_layers=num_layers, layer_cfg=dict(
        self_attn_cfg=attn_cfg(False), cross_attn_cfg=dict(attn_cfg(True), **layer_kwargs),
        ffn_cfg=dict(embed_dims=DIMS, feedforward_channels=32)))


def test_cross_attention_ignores_padded_keys_and_self_attention_is_residual():
    torch.manual_seed(0)
    attention = ConditionalAttention(**attn_cfg(True)).eval()
    query, query_pos, sine = (torch.randn(2, 5, DIMS) for _ in range(3))
    key, key_pos = torch.randn(2, 7, DIMS), torch.randn(2, 7, DIMS)
    mask = torch.zeros(2, 7, dtype=torch.bool)
    mask[:, 5:] = True
    out = attention(query, key, query_pos=query_pos, ref_sine_embed=sine, key_pos=key_pos,
                    key_padding_mask=mask, is_first=True)
    key2 = key.clone()
    key2[:, 5:] = 100.
    out2 = attention(query, key2, query_pos=query_pos, ref_sine_embed=sine, key_pos=key_pos,
                     key_padding_mask=mask, is_first=True)
    assert torch.allclose(out, out2, atol=1e-6)
    # Without the first layer's query position the output changes.
    assert not torch.allclose(out, attention(query, key, query_pos=query_pos,
                                             ref_sine_embed=sine, key_pos=key_pos,
                                             key_padding_mask=mask))
    self_attention = ConditionalAttention(**attn_cfg(False))
    torch.nn.init.zeros_(self_attention.out_proj.weight)
    assert torch.equal(self_attention(query, None, query_pos=query_pos), query)
    assert not hasattr(self_attention, 'qpos_sine_proj')
    with pytest.raises(ValueError, match='batch_first'):
        ConditionalAttention(DIMS, HEADS, batch_first=False)
    with pytest.raises(ValueError, match='divisible'):
        ConditionalAttention(DIMS, 3)


def test_conditional_decoder_keys_and_outputs():
    decoder = ConditionalDetrTransformerDecoder(**decoder_cfg())
    keys = decoder.state_dict()
    # Only the first layer projects the query position for cross-attention.
    assert 'layers.0.cross_attn.qpos_proj.weight' in keys
    assert not any(k.startswith(('layers.1.cross_attn.qpos_proj', 'layers.2.cross_attn.qpos_proj'))
                   for k in keys)
    assert 'layers.1.self_attn.qpos_proj.weight' in keys
    assert {'query_scale.layers.1.weight', 'ref_point_head.layers.1.weight'} <= set(keys)
    states, references = decoder(torch.zeros(2, 4, DIMS), key=torch.randn(2, 6, DIMS),
                                 query_pos=torch.randn(2, 4, DIMS),
                                 key_pos=torch.randn(2, 6, DIMS))
    assert states.shape == (3, 2, 4, DIMS) and references.shape == (2, 4, 2)
    assert ((references > 0) & (references < 1)).all()


def test_dab_decoder_refines_anchors_layer_by_layer():
    torch.manual_seed(0)
    decoder = DABDetrTransformerDecoder(**decoder_cfg())
    anchors = inverse_sigmoid(torch.rand(2, 4, 4) * 0.5 + 0.25)
    key, key_pos = torch.randn(2, 6, DIMS), torch.randn(2, 6, DIMS)
    zero_branch = MLP(DIMS, DIMS, 4, 3)
    torch.nn.init.zeros_(zero_branch.layers[-1].weight)
    torch.nn.init.zeros_(zero_branch.layers[-1].bias)
    states, references = decoder(torch.zeros(2, 4, DIMS), key, query_pos=anchors,
                                 key_pos=key_pos, reg_branches=zero_branch)
    assert states.shape == (3, 2, 4, DIMS) and references.shape == (3, 2, 4, 4)
    # A box branch predicting nothing leaves every layer on the initial anchors.
    for layer_references in references:
        assert torch.allclose(layer_references, anchors.sigmoid(), atol=1e-6)
    _, moved = decoder(torch.zeros(2, 4, DIMS), key, query_pos=anchors, key_pos=key_pos,
                       reg_branches=MLP(DIMS, DIMS, 4, 3))
    assert torch.allclose(moved[0], anchors.sigmoid())
    assert not torch.allclose(moved[1], moved[0]) and not torch.allclose(moved[2], moved[1])


@pytest.mark.parametrize('scale_type,query_dim,hw', [
    ('cond_scalar', 4, True), ('fix_elewise', 4, False), ('cond_elewise', 2, False)])
def test_dab_decoder_variants(scale_type, query_dim, hw):
    decoder = DABDetrTransformerDecoder(**decoder_cfg(num_layers=2), query_dim=query_dim,
                                        query_scale_type=scale_type, with_modulated_hw_attn=hw)
    assert hasattr(decoder, 'ref_anchor_head') == hw
    assert decoder.ref_point_head.layers[0].in_features == query_dim // 2 * DIMS
    states, references = decoder(torch.zeros(1, 3, DIMS), torch.randn(1, 5, DIMS),
                                 query_pos=torch.randn(1, 3, query_dim),
                                 key_pos=torch.randn(1, 5, DIMS),
                                 reg_branches=MLP(DIMS, DIMS, 4, 3))
    assert states.shape == (2, 1, 3, DIMS) and references.shape == (2, 1, 3, query_dim)


def test_dab_decoder_rejects_bad_settings():
    with pytest.raises(ValueError, match='query_dim'):
        DABDetrTransformerDecoder(**decoder_cfg(), query_dim=3)
    with pytest.raises(ValueError, match='query_scale_type'):
        DABDetrTransformerDecoder(**decoder_cfg(), query_scale_type='elewise')
    with pytest.raises(ValueError, match='with_modulated_hw_attn'):
        DABDetrTransformerDecoder(**decoder_cfg(), query_dim=2)
    # keep_query_pos keeps every layer's cross-attention query position.
    decoder = DABDetrTransformerDecoder(**decoder_cfg(keep_query_pos=True))
    assert 'layers.2.cross_attn.qpos_proj.weight' in decoder.state_dict()


def small_dab_detr(**kwargs):
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/dab_detr/dab-detr_r50_8xb2-50e_coco.py'))
    model = cfg.model.to_dict()
    model['backbone'] = dict(type='ResNet', depth=18, base_channels=8, out_indices=(3, ),
                             init_cfg=None)
    model['neck']['in_channels'] = [64]
    model.update(num_queries=5, **kwargs)
    return MODELS.build(model)


def test_dab_detr_patterns_and_random_anchors():
    torch.manual_seed(0)
    model = small_dab_detr(num_patterns=3, with_random_refpoints=True)
    model.init_weights()
    anchors = model.query_embedding.weight
    assert anchors.shape == (5, 4)
    # Centres are stored as logits of uniform draws, sizes as the draws.
    assert ((anchors[:, 2:] >= 0) & (anchors[:, 2:] <= 1)).all()
    assert (anchors[:, :2] < 0).any()  # logits of draws below 0.5
    decoder_inputs, head_inputs = model.pre_decoder(torch.randn(2, 7, 256))
    query, query_pos = decoder_inputs['query'], decoder_inputs['query_pos']
    assert head_inputs == {} and query.shape == (2, 15, 256) and query_pos.shape == (2, 15, 4)
    # Pattern-major: queries 0-4 carry pattern 0 with anchors 0-4, then pattern 1 ...
    assert torch.equal(query[1, 5], model.patterns.weight[1])
    assert torch.equal(query[0, 4], model.patterns.weight[0])
    assert torch.equal(query_pos[0, 7], anchors[2])
    with pytest.raises(ValueError, match='num_patterns'):
        small_dab_detr(num_patterns=-1)
