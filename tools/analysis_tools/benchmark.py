"""Speed of a detector or of its data: ``python tools/analysis_tools/benchmark.py CONFIG
[CHECKPOINT] [--task inference|dataloader|dataset] [options]``, as MMDetection's tool.

``--task inference`` (the task when a checkpoint is given) runs the test dataloader one
image at a time through ``model.test_step`` (preprocessing, network, decoding and NMS; data
loading not counted) and prints images per second after ``--num-warmup`` images. ``--amp``
runs under autocast (float16 on CUDA, bfloat16 on CPU).

``--task dataset`` (``--dataset-type train|val|test``) times the dataset's pipeline one sample
at a time in this process with one OpenCV and torch thread, as a DataLoader worker runs it:
the images per second one worker delivers. ``--task dataloader`` (MMDetection's default)
times the config's DataLoader (``--num-workers`` to override its workers) in images per
second, and that rate per worker (the loader's rate over its workers, or the main process's
rate with 0 workers; it holds while every worker has a core of its own: where workers
outnumber free cores, ``--task dataset`` measures one worker alone). With ``--step-time
SECONDS`` (a training step of your GPU recipe) and the loader's batch size, both say how
many workers keep that step fed.
"""
import argparse
import math
import time
from typing import List

import cv2
import numpy as np
import torch
from mmengine.runner import Runner

from detlab.apis import init_detector
from detlab.apis.inference import load_model_config
from detlab.utils import (CfgOptionsAction, adopt_default_scope, merge_cfg_options,
                          register_all_modules)

#: A loader that is busy this fraction of the step keeps up with some margin for slow images.
FEED_MARGIN = 0.9


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Measure the speed of a detector or its data')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('checkpoint', nargs='?', help='checkpoint file (inference)')
    parser.add_argument('--checkpoint', dest='checkpoint_option', metavar='CHECKPOINT',
                        help="checkpoint file, as MMDetection's tool takes it")
    parser.add_argument('--task', choices=['inference', 'dataloader', 'dataset'], default=None,
                        help='what to time (default: inference with a checkpoint, else '
                        'dataloader)')
    parser.add_argument('--dataset-type', choices=['train', 'val', 'test'], default='test',
                        help='which dataloader of the config the data tasks time')
    parser.add_argument('--num-workers', type=int, default=None,
                        help='dataloader task: workers (default: the config\'s)')
    parser.add_argument('--step-time', type=float, default=None,
                        help='data tasks: seconds of one training step to keep fed; prints '
                        'the workers needed')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (float16 on CUDA, bfloat16 on CPU)')
    parser.add_argument('--device', default=None, help="'cpu' or 'cuda:0' (default: GPU if any)")
    parser.add_argument('--max-iter', type=int, default=200, help='images (or batches) to time')
    parser.add_argument('--num-warmup', type=int, default=5, help='images before timing starts')
    parser.add_argument('--log-interval', type=int, default=50, help='print every N images')
    parser.add_argument('--repeat-num', type=int, default=1, help='repeat the measurement')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/test.py')
    args = parser.parse_args()
    if args.checkpoint and args.checkpoint_option:
        parser.error('give the checkpoint once: positional or --checkpoint')
    args.checkpoint = args.checkpoint or args.checkpoint_option
    if args.task is None:
        args.task = 'inference' if args.checkpoint else 'dataloader'
    if args.task == 'inference' and not args.checkpoint:
        parser.error('--task inference needs a checkpoint')
    if args.max_iter <= args.num_warmup or args.num_warmup < 0:
        parser.error(f'--max-iter ({args.max_iter}) must exceed --num-warmup ({args.num_warmup})')
    if args.step_time is not None and args.step_time <= 0:
        parser.error(f'--step-time must be a positive number of seconds, got {args.step_time}')
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


def measure_dataset(dataset, max_iter: int, num_warmup: int, log_interval: int) -> float:
    """Samples per second of ``dataset[i]`` in this process, one thread, warm-up excluded:
    what one DataLoader worker delivers."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    elapsed, timed = 0.0, 0
    for index in range(max_iter):
        start = time.perf_counter()
        dataset[index % len(dataset)]
        if index >= num_warmup:
            elapsed += time.perf_counter() - start
            timed += 1
            if timed % log_interval == 0:
                print(f'Done sample [{index + 1:<3}/{max_iter}], {timed / elapsed:.2f} img / s')
    return timed / elapsed


def measure_dataloader(data_loader, max_iter: int, num_warmup: int, log_interval: int) -> float:
    """Images per second the DataLoader delivers over ``max_iter`` batches, warm-up batches
    (and the workers' start) excluded."""
    images, index, start = 0, 0, None
    while index < max_iter:
        for data in data_loader:
            index += 1
            if index == num_warmup:
                start = time.perf_counter()
            elif index > num_warmup:
                images += len(data['inputs'])
                if (index - num_warmup) % log_interval == 0:
                    print(f'Done batch [{index:<3}/{max_iter}], '
                          f'{images / (time.perf_counter() - start):.2f} img / s')
            if index >= max_iter:
                break
    if start is None:  # num_warmup 0
        raise SystemExit('--num-warmup must be at least 1 for --task dataloader')
    return images / (time.perf_counter() - start)


def workers_needed(images_per_second_per_worker: float, batch_size: int,
                   step_time: float) -> int:
    """Workers that deliver ``batch_size`` images within ``step_time`` while busy only
    :data:`FEED_MARGIN` of the time."""
    needed = batch_size / step_time
    return max(1, math.ceil(needed / (images_per_second_per_worker * FEED_MARGIN)))


def benchmark_data(args) -> None:
    register_all_modules()
    cfg = load_model_config(args.config)
    merge_cfg_options(cfg, args.cfg_options)
    adopt_default_scope(cfg)
    loader_cfg = cfg.get(f'{args.dataset_type}_dataloader')
    if loader_cfg is None:
        raise SystemExit(f'{args.config} has no {args.dataset_type}_dataloader; choose '
                         '--dataset-type among train, val and test')
    batch_size = loader_cfg.get('batch_size', 1)
    results: List[float] = []
    for run in range(args.repeat_num):
        if args.task == 'dataset':
            dataset = Runner.build_dataloader(dict(loader_cfg, num_workers=0,
                                                   persistent_workers=False)).dataset
            rate = measure_dataset(dataset, args.max_iter, args.num_warmup, args.log_interval)
            print(f'Overall ({args.dataset_type} pipeline, one worker, run {run + 1}): '
                  f'{rate:.2f} img / s')
        else:
            options = dict(loader_cfg)
            if args.num_workers is not None:
                options.update(num_workers=args.num_workers,
                               persistent_workers=args.num_workers > 0)
            num_workers = options.get('num_workers', 0)
            rate = measure_dataloader(Runner.build_dataloader(options), args.max_iter,
                                      args.num_warmup, args.log_interval)
            print(f'Overall ({args.dataset_type} dataloader, {num_workers} workers, '
                  f'run {run + 1}): {rate:.2f} img / s, {rate / max(num_workers, 1):.2f} '
                  'img / s per worker')
        results.append(rate)
    rate = float(np.mean(results))
    if args.repeat_num > 1:
        print(f'Mean over {args.repeat_num} runs: {rate:.2f} img / s, std {np.std(results):.2f}')
    if args.step_time is not None:
        per_worker = rate if args.task == 'dataset' else rate / max(num_workers, 1)
        workers = workers_needed(per_worker, batch_size, args.step_time)
        print(f'A step of {args.step_time} s with batch {batch_size} needs '
              f'{batch_size / args.step_time:.1f} img / s: {workers} workers at '
              f'{per_worker:.2f} img / s each')
        if args.task == 'dataloader':
            enough = rate * FEED_MARGIN >= batch_size / args.step_time
            print(f'This loader ({num_workers} workers) '
                  f'{"keeps up" if enough else "does not keep up; add workers"}')


def main() -> None:
    args = parse_args()
    if args.task != 'inference':
        benchmark_data(args)
        return
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
