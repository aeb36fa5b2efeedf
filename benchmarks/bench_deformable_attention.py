"""Multi-scale deformable attention on the CPU: detlab's against mmcv's PyTorch fallback.

Both get the same inputs at DINO-4scale's sizes (256 channels in 8 heads, 4
levels, 4 points; the encoder's queries are all tokens of an IMAGE x IMAGE
input's strides 8-64 maps, the decoder's 900 queries) and run forward and
backward. The encoder's queries take detlab's grid_sample path (mmcv's output
bit for bit), the decoder's the gather path (equal to float rounding); the
script prints, per case, both times, mmcv's over detlab's, and the largest
absolute differences of the output and of the value, location and attention
weight gradients, and stops if the encoder's output is not mmcv's bit for bit
or any difference exceeds 1e-5 of the largest magnitude in mmcv's tensor. mmcv's function is
imported through tools/dev/mmdet_reference.py's stand-in for mmcv's compiled
extension (mmcv-lite has none).

    python benchmarks/bench_deformable_attention.py [--image 384] [--batch 2] [--repeats 5] \
        [--threads 1]
"""
import argparse
import sys
import time
from pathlib import Path

import torch

from detlab.models.layers.transformer import multi_scale_deformable_attn

HEADS, HEAD_DIMS, LEVELS, POINTS = 8, 32, 4, 4
STRIDES = (8, 16, 32, 64)
DECODER_QUERIES = 900


def mmcv_fallback():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'tools' / 'dev'))
    from mmdet_reference import _install_ext_stand_in
    _install_ext_stand_in()
    from mmcv.ops.multi_scale_deform_attn import multi_scale_deformable_attn_pytorch
    return multi_scale_deformable_attn_pytorch


def make_inputs(batch: int, image: int, queries: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.tensor([[-(-image // s), -(-image // s)] for s in STRIDES])
    num_value = int(shapes.prod(1).sum())
    queries = num_value if queries is None else queries
    value = torch.randn(batch, num_value, HEADS, HEAD_DIMS, generator=gen)
    locations = torch.rand(batch, queries, HEADS, LEVELS, POINTS, 2, generator=gen) * 1.2 - 0.1
    weights = torch.rand(batch, queries, HEADS, LEVELS, POINTS, generator=gen).softmax(-1)
    return value, shapes, locations, weights


def run(fn, inputs):
    """Forward and backward; returns the seconds, the output and the gradients."""
    leaves = [t.detach().clone().requires_grad_() if t.is_floating_point() else t
              for t in inputs]
    start = time.perf_counter()
    out = fn(*leaves)
    out.backward(torch.ones_like(out))
    seconds = time.perf_counter() - start
    return seconds, out.detach(), [leaves[i].grad for i in (0, 2, 3)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--image', type=int, default=384, help='input side in pixels')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs; the fastest is kept (other load only adds time)')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch threads (one keeps timings steady on a shared machine)')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    reference = mmcv_fallback()
    for case, queries in (('encoder', None), ('decoder', DECODER_QUERIES)):
        inputs = make_inputs(args.batch, args.image, queries)
        times = {'mmcv': [], 'detlab': []}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            t_ref, out_ref, grads_ref = run(reference, inputs)
            t_det, out_det, grads_det = run(multi_scale_deformable_attn, inputs)
            times['mmcv'].append(t_ref)
            times['detlab'].append(t_det)
        diffs = [(a - b).abs().max().item()
                 for a, b in zip([out_det, *grads_det], [out_ref, *grads_ref])]
        if case == 'encoder' and not torch.equal(out_ref, out_det):
            sys.exit('encoder: the output is not mmcv\'s bit for bit')
        if any(diff > 1e-5 * b.abs().max().item()
               for diff, b in zip(diffs, [out_ref, *grads_ref])):
            sys.exit(f'{case}: outputs or gradients differ (largest differences {diffs})')
        mmcv_s, detlab_s = min(times['mmcv']), min(times['detlab'])
        print(f'{case}: {inputs[2].shape[1]} queries, {inputs[0].shape[1]} values, batch '
              f'{args.batch}: mmcv {mmcv_s:.3f} s, detlab {detlab_s:.3f} s, '
              f'mmcv/detlab {mmcv_s / detlab_s:.2f}x (forward + backward, best of '
              f'{args.repeats}, {args.threads} thread(s)); largest |detlab - mmcv|: output '
              f'{diffs[0]:.1e}, gradients of value {diffs[1]:.1e}, locations {diffs[2]:.1e}, '
              f'attention weights {diffs[3]:.1e}')


if __name__ == '__main__':
    main()
