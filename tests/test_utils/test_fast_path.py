"""The GPU fast path's defaults: channels_last and fused optimizers on CUDA only, and what a
config says wins."""
import pytest
import torch

from detlab.utils.fast_path import fused_optimizer_cfg, supports_fused, use_channels_last


def test_channels_last_defaults_to_cuda_and_the_config_wins():
    assert use_channels_last(None, 'cuda') and use_channels_last(None, torch.device('cuda:1'))
    assert not use_channels_last(None, 'cpu')
    assert not use_channels_last(False, 'cuda') and use_channels_last(True, 'cpu')
    with pytest.raises(TypeError, match="got 'yes'"):
        use_channels_last('yes', 'cuda')


@pytest.mark.parametrize('name', ['SGD', 'Adam', 'AdamW'])
def test_cuda_optimizers_step_fused_unless_the_config_chose(name):
    cfg = dict(type='OptimWrapper', optimizer=dict(type=name, lr=0.01))
    fused = fused_optimizer_cfg(cfg, 'cuda')
    assert fused['optimizer'] == dict(type=name, lr=0.01, fused=True)
    assert cfg['optimizer'] == dict(type=name, lr=0.01)  # the config is not changed
    assert fused_optimizer_cfg(cfg, 'cpu') is cfg
    for choice in (dict(fused=False), dict(foreach=True)):
        chosen = dict(cfg, optimizer=dict(type=name, lr=0.01, **choice))
        assert fused_optimizer_cfg(chosen, 'cuda') is chosen


def test_optimizers_without_fused_and_other_configs_are_left_alone():
    assert not supports_fused(torch.optim.LBFGS) and supports_fused(torch.optim.SGD)
    lbfgs = dict(optimizer=dict(type='LBFGS', lr=1.0))
    assert fused_optimizer_cfg(lbfgs, 'cuda') is lbfgs
    several = dict(constructor='MyConstructor', backbone=dict(optimizer=dict(type='SGD')))
    assert fused_optimizer_cfg(several, 'cuda') is several
    built = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    assert fused_optimizer_cfg(built, 'cuda') is built


def test_fused_step_equals_the_plain_step_on_the_cpu():
    """What fused=True changes is the kernel, not the update (checked where torch has the
    fused CPU kernels too)."""
    torch.manual_seed(0)
    weights = torch.randn(5, 3)
    results = []
    for fused in (False, True):
        param = torch.nn.Parameter(weights.clone())
        optimizer = torch.optim.AdamW([param], lr=0.1, fused=fused)
        for _ in range(3):
            param.grad = param.detach() ** 2
            optimizer.step()
        results.append(param.detach())
    torch.testing.assert_close(results[0], results[1], rtol=1e-6, atol=1e-7)
