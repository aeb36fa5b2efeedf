"""The benchmarks' peak-memory figure on a CUDA GPU: a model's own weights, gradients,
optimizer state and activations, none of the tensors resident beside it.

Skipped, with the reason, on machines without CUDA.
"""
import pytest
import torch

from helpers import load_tool

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason='needs a CUDA GPU; this machine has none')
MIB = 2**20


def test_step_peak_counts_the_model_and_not_its_neighbours():
    bench = load_tool('benchmarks/bench_retinanet.py')
    model = torch.nn.Linear(1024, 1024).cuda()  # 4 MiB of weights
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    inputs = torch.randn(2048, 1024, device='cuda')  # 8 MiB; its 8 MiB output is an activation
    neighbour = torch.empty(256 * MIB, dtype=torch.uint8, device='cuda')  # another model's

    def step(optimizer):
        optimizer.zero_grad()
        model(inputs).square().mean().backward()
        optimizer.step()

    # The first step makes the momentum buffers and cuBLAS's workspace, which stay; the
    # benchmarks measure after their warm-up rounds, as the second call here.
    bench.step_peak_bytes(model, optimizer, step, optimizer)
    peak = bench.step_peak_bytes(model, optimizer, step, optimizer)
    assert bench.state_bytes(model, optimizer) == (4 * MIB + 4096) * 2  # weights + momentum
    # state (8 MiB), gradients (4 MiB), at least the output, its gradient and the square's
    # gradient at once (3 x 8 MiB); far under the 256 MiB beside it
    assert 28 * MIB <= peak < 80 * MIB, peak / MIB
    assert all(p.grad is None for p in model.parameters())
    del neighbour
