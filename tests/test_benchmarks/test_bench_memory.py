"""benchmarks/bench_memory.py's replay of the profiler's memory timeline: on a chain of
Linear layers, whose activations are known, the peak and what is alive at it."""
import torch

from helpers import load_tool

MIB = 2**20


def test_peak_of_linear_chain_is_its_saved_activations():
    bench = load_tool('benchmarks/bench_memory.py')
    torch.manual_seed(0)
    hidden, rows, width = 5, 4096, 64  # each hidden activation 4096 x 64 fp32 = 1 MiB
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(hidden)],
                                torch.nn.Linear(width, 1))
    x = torch.randn(rows, width)

    def step():
        model(x).sum().backward()

    step()  # warm-up
    model.zero_grad(set_to_none=True)
    result = bench.peak_of(bench.profile_step(step), torch.device('cpu'), top=3)

    params = sum(p.numel() * p.element_size() for p in model.parameters())
    # Each layer saves its input for its weight's gradient: at the end of the forward the
    # input and the hidden outputs are alive; the backward adds one 1 MiB gradient before
    # it frees the last hidden output (and then one at a time, each layer freeing one).
    expected = params + (1 + hidden + 1) * MIB
    assert abs(result['peak'] - expected) <= 0.03 * expected, (result, expected)
    assert result['baseline'] >= params + MIB  # weights and input exist before the step
    split = result['by_category']
    assert sum(split.values()) == result['peak']
    assert split['input'] == MIB and split['parameter'] == params, split
    # The hidden outputs still saved (activations) and the gradients of the backward so far.
    saved = split['activation'] + split.get('autograd_detail', 0) + split.get('gradient', 0)
    assert abs(saved - (hidden + 1) * MIB) <= MIB / 8, split
    (site, op, category, nbytes, count), *_ = result['top']
    assert (op, category) == ('aten::linear', 'activation') and count >= hidden - 1, result
    assert nbytes == count * MIB and 'test_bench_memory.py' in site and 'step' in site
