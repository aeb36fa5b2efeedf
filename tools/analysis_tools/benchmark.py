"""Inference speed of a detector: ``python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT
[--amp] [--max-iter 200] [--num-warmup 5] [--device cpu] [--cfg-options ...]``.

Runs the test dataloader one image at a time through ``model.test_step``
(preprocessing, network, decoding and NMS; data loading not counted) and
prints images per second after ``--num-warmup`` images. ``--amp`` runs under
autocast (float16 on CUDA, bfloat16 on CPU).
"""
import argparse
import time
from typing import List

import numpy as np
import torch
from mmengine.runner import Runner

from detlab.apis import init_detector
from detlab.utils import CfgOptionsAction


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Measure the inference speed of a detector')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda:0' (default: GPU if any)")
    parser.add_argument('--max-iter', type=int, default=200, help='images to time in all')
    parser.add_argument('--num-warmup', type=int, default=5, help='images before timing starts')
    parser.add_argument('--log-interval', type=int, default=50, help='print every N images')
    parser.add_argument('--repeat-num', type=int, default=1, help='repeat the measurement')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/test.py')
    args = parser.parse_args()
    if args.max_iter <= args.num_warmup or args.num_warmup < 0:
        parser.error(f'--max-iter ({args.max_iter}) must exceed --num-warmup ({args.num_warmup})')
    return args


def measure_fps(model: torch.nn.Module, data_loader, max_iter: int, num_warmup: int,
                log_interval: int, amp: bool) -> float:
    """Images per second of ``model.test_step`` over ``max_iter`` images, warm-up excluded."""
    device = next(model.parameters()).device
    amp_dtype = torch.float16 if device.type == 'cuda' else torch.bfloat16
    elapsed, timed, index = 0.0, 0, 0
    while index < max_iter:
        for data in data_loader:
            if device.type == 'cuda':
                torch.cuda.synchronize()
            start = time.perf_counter()
            with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                model.test_step(data)
            if device.type == 'cuda':
                torch.cuda.synchronize()
            index += 1
            if index > num_warmup:
                elapsed += time.perf_counter() - start
                timed += 1
                if timed % log_interval == 0:
                    print(f'Done image [{index:<3}/{max_iter}], fps: {timed / elapsed:.2f} img / s')
            if index >= max_iter:
                break
    return timed / elapsed


def main() -> None:
    args = parse_args()
    model = init_detector(args.config, args.checkpoint, device=args.device,
                          cfg_options=args.cfg_options)
    loader_cfg = dict(model.cfg.test_dataloader, batch_size=1)
    data_loader = Runner.build_dataloader(loader_cfg)
    precision = 'amp' if args.amp else 'fp32'
    results: List[float] = []
    for run in range(args.repeat_num):
        fps = measure_fps(model, data_loader, args.max_iter, args.num_warmup,
                          args.log_interval, args.amp)
        results.append(fps)
        print(f'Overall fps ({precision}, run {run + 1}): {fps:.2f} img / s')
    if args.repeat_num > 1:
        print(f'Mean fps over {args.repeat_num} runs ({precision}): {np.mean(results):.2f} '
              f'img / s, std {np.std(results):.2f}')


if __name__ == '__main__':
    main()
