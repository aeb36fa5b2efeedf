"""DINO-4scale R50's train step and inference, timed.

detlab builds MMDetection's ``dino/dino-4scale_r50_8xb2-12e_coco.py`` (random
initialisation, every backbone stage trainable with BatchNorm in training mode,
900 queries, 100 denoising queries) and times, on bench_retinanet's inputs (2
images of 512x512 by default, random pixels, 3 random boxes each): a train step
(forward, Hungarian matching, the losses of every decoder layer, the encoder
and the denoising queries, backward, an SGD step) and inference (forward and
the top-300 post-processing). It prints median seconds, the process's CPU
time for each (all threads; on a loaded machine, with one thread, closer to
what an idle one takes than the wall time), and the share of the wall time
spent in multi-scale deformable attention's forward (timed inside it).
``--device cuda --amp bf16 --batch 8 --size 800`` is the GPU case.

    python benchmarks/bench_dino.py [--rounds 3] [--warmup 1] [--threads N]
        [--device cpu|cuda] [--amp none|bf16|fp16] [--batch 2] [--size 512]
"""
import functools
import statistics
import sys
import time

import torch

from detlab.models.layers.transformer import ms_deform_attn
import bench_retinanet as common

CONFIG = 'configs/dino/dino-4scale_r50_8xb2-12e_coco.py'


class AttentionTimer:
    """Seconds spent in ``MultiScaleDeformableAttention.forward`` (synchronised
    on CUDA; its backward is not included)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        module = ms_deform_attn.MultiScaleDeformableAttention
        original = module.forward

        @functools.wraps(original)
        def timed_forward(attention, *args, **kwargs):
            common.synchronize()
            start = time.perf_counter()
            output = original(attention, *args, **kwargs)
            common.synchronize()
            self.seconds += time.perf_counter() - start
            return output

        module.forward = timed_forward


def main() -> None:
    # A short default (a DINO step takes seconds on a CPU); argparse keeps the
    # last occurrence, so options given on the command line still win.
    sys.argv[1:1] = ['--rounds', '3', '--warmup', '1']
    args = common.parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    images, boxes, labels = common.make_inputs()
    model, train_step, inference = common.build_detlab(images, boxes, labels, extra_convs=None,
                                                       config=CONFIG)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(common.DEVICE.type) \
        if common.AMP_DTYPE is torch.float16 else None
    timer = AttentionTimer()
    times = {'train': [], 'infer': []}
    cpu_times = {'train': [], 'infer': []}
    shares = {'train': [], 'infer': []}
    for round_index in range(args.warmup + args.rounds):
        for kind, step in (('train', lambda: train_step(optimizer, scaler)),
                           ('infer', inference)):
            model.train(kind == 'train')
            timer.seconds = 0.0
            cpu_start = time.process_time()
            seconds = common.timed(step)
            if round_index >= args.warmup:
                times[kind].append(seconds)
                cpu_times[kind].append(time.process_time() - cpu_start)
                shares[kind].append(timer.seconds / seconds)
    where = (torch.cuda.get_device_name() if common.DEVICE.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    precision = 'fp32' if common.AMP_DTYPE is None else f'{common.AMP_DTYPE} autocast'
    print(f'DINO-4scale R50, {common.NUM_IMAGES} images {common.IMAGE_SIZE}x'
          f'{common.IMAGE_SIZE}, {where}, {precision}, {args.rounds} rounds (median seconds)')
    print(f'parameters: {sum(p.numel() for p in model.parameters()):,}')
    for kind in ('train', 'infer'):
        print(f'{kind:5s}: {statistics.median(times[kind]):.3f}s  (process CPU time '
              f'{statistics.median(cpu_times[kind]):.3f}s)  deformable attention forward '
              f'{100 * statistics.median(shares[kind]):.1f}% of it')


if __name__ == '__main__':
    main()
