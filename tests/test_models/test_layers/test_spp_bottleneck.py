"""SPPBottleneck's cascaded pooling gives the values of pooling the input directly."""
import pytest
import torch
import torch.nn.functional as F

from detlab.models.layers import SPPBottleneck


@pytest.mark.parametrize('kernel_sizes, cascade', [((5, 9, 13), True), ((3, 7), True),
                                                   ((9, 5), False)])
def test_pools_equal_direct_pooling(kernel_sizes, cascade):
    torch.manual_seed(0)
    spp = SPPBottleneck(8, 8, kernel_sizes=kernel_sizes).eval()
    assert spp.cascade == cascade
    x = torch.randn(2, 8, 11, 13)
    captured = {}
    spp.conv2.register_forward_pre_hook(lambda module, args: captured.update(x=args[0]))
    spp(x)
    mid = spp.conv1(x)
    direct = torch.cat([mid] + [F.max_pool2d(mid, k, 1, k // 2) for k in kernel_sizes], dim=1)
    assert torch.equal(captured['x'], direct)
