import pytest
import torch

from detlab.registry import MODELS


def _mlp(v, fc1, fc2, hidden_act=torch.relu):
    """fc2(act(fc1(v))) for (C,) vectors and ConvModule 1x1 convs, by matrix products."""
    w1, b1 = fc1.conv.weight[:, :, 0, 0], fc1.conv.bias
    w2, b2 = fc2.conv.weight[:, :, 0, 0], fc2.conv.bias
    return w2 @ hidden_act(w1 @ v + b1) + b2


def _conv2_1_by_loops(maps, weight):
    """Zero-padded 'same' correlation of (2, H, W) maps with a (1, 2, k, k) kernel."""
    _, height, width = maps.shape
    k = weight.shape[-1]
    pad = k // 2
    out = torch.zeros(height, width)
    for y in range(height):
        for x in range(width):
            total = 0.0
            for c in range(2):
                for dy in range(k):
                    for dx in range(k):
                        yy, xx = y + dy - pad, x + dx - pad
                        if 0 <= yy < height and 0 <= xx < width:
                            total += maps[c, yy, xx] * weight[0, c, dy, dx]
            out[y, x] = total
    return out


def test_se_block_rescales_channels_by_the_gate():
    torch.manual_seed(0)
    se = MODELS.build(dict(type='SEBlock', in_channels=8, ratio=4)).eval()
    x = torch.randn(2, 8, 5, 6)
    with torch.no_grad():
        out = se(x)
        for b in range(2):
            gate = torch.sigmoid(_mlp(x[b].mean(dim=(1, 2)), se.conv1, se.conv2))
            assert torch.allclose(out[b], x[b] * gate[:, None, None], atol=1e-6)
    assert se.conv1.conv.out_channels == 2


def test_se_block_act_cfg_pair():
    se = MODELS.build(dict(type='SEBlock', in_channels=8, ratio=2,
                           act_cfg=(dict(type='SiLU'), dict(type='Sigmoid'))))
    assert isinstance(se.conv1.activate, torch.nn.SiLU)
    with pytest.raises(ValueError, match='act_cfg'):
        MODELS.build(dict(type='SEBlock', in_channels=8, act_cfg=[dict(type='ReLU')]))
    with pytest.raises(ValueError, match='ratio'):
        MODELS.build(dict(type='SEBlock', in_channels=8, ratio=0))
    assert MODELS.build(dict(type='SEBlock', in_channels=8)).conv1.conv.out_channels == 1


@pytest.mark.parametrize('kernel', [3, 7])
def test_cbam_is_channel_then_spatial_attention(kernel):
    torch.manual_seed(1)
    cbam = MODELS.build(dict(type='CBAM', in_channels=4, ratio=2, spatial_kernel=kernel)).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        ca = cbam.channel_attention
        avg, peak = x[0].mean(dim=(1, 2)), x[0].flatten(1).max(dim=1).values
        channel_gate = torch.sigmoid(_mlp(avg, ca.fc1, ca.fc2) + _mlp(peak, ca.fc1, ca.fc2))
        y = x[0] * channel_gate[:, None, None]
        maps = torch.stack([y.mean(dim=0), y.max(dim=0).values])
        spatial_gate = torch.sigmoid(_conv2_1_by_loops(maps, cbam.spatial_attention.conv.weight))
        expected = y * spatial_gate[None]
        assert torch.allclose(cbam(x)[0], expected, atol=1e-5)


def test_cbam_bad_kernel():
    with pytest.raises(ValueError, match='odd'):
        MODELS.build(dict(type='CBAM', in_channels=4, spatial_kernel=4))


@pytest.mark.parametrize('memory_format', [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.bfloat16])
def test_spatial_mean_is_adaptive_avg_pool_bit_for_bit_with_a_broadcast_gradient(
        memory_format, dtype):
    from detlab.models.layers.attention import spatial_mean
    torch.manual_seed(0)
    base = (torch.randn(2, 24, 19, 23) * 3 + 1).to(dtype).contiguous(memory_format=memory_format)
    weight = torch.randn(1, 24, 1, 1, dtype=dtype)
    results = []
    for pool in (spatial_mean, lambda t: torch.nn.functional.adaptive_avg_pool2d(t, 1)):
        x = base.clone().requires_grad_()
        out = x * torch.sigmoid(pool(x) * weight)  # x used twice, as in the attention blocks
        out.backward(torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out))
        results.append((out.detach(), x.grad))
    (out, grad), (ref_out, ref_grad) = results
    assert torch.equal(out, ref_out)
    assert torch.equal(grad, ref_grad)
    assert grad.is_contiguous(memory_format=memory_format)


def test_channel_attention_has_mmdetections_parameters_only():
    from detlab.models.layers import ChannelAttention
    attention = ChannelAttention(8)
    assert sorted(attention.state_dict()) == ['fc.bias', 'fc.weight']
