"""The COCO training pipeline: detlab against an equivalent torchvision.transforms.v2 one.

Both pipelines take the same coco128 samples (image path and parsed boxes,
from detlab's CocoDataset) and produce a uint8 (3, H, W) tensor with its
boxes and labels:

- detlab: the base COCO config's train pipeline ``LoadImageFromFile ->
  LoadAnnotations -> Resize((1333, 800), keep_ratio) -> RandomFlip(0.5) ->
  PackDetInputs`` (cv2 decode, BGR);
- torchvision: ``decode_image`` (RGB) -> ``tv_tensors`` image and boxes ->
  ``v2.Resize(800, max_size=1333)`` (the same scale: short side 800, long side
  at most 1333, aspect kept) -> ``v2.RandomHorizontalFlip(0.5)`` -> output.

One process, one thread each (``--threads``); the two alternate every
round, in an order reversed every other round, so drifts in machine load hit
both alike. Prints the median images/s of each and the ratio detlab /
torchvision (above 1: detlab is faster). Then, with ``--workers`` (4), one
epoch through a DataLoader and the memory of each worker process (RSS, and
PSS, which splits shared pages among the processes that share them).

    python benchmarks/bench_pipeline.py [--data-root ../shared/data/coco128] [--rounds 5]
"""
import argparse
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List

import cv2
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from torch.utils.data import DataLoader
from torchvision import tv_tensors
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms import v2

from detlab.registry import DATASETS
from detlab.utils import register_all_modules

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_CONFIG = osp.join(REPO_ROOT, 'configs/_base_/datasets/coco_detection.py')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default=osp.join(REPO_ROOT, '..', 'shared', 'data',
                                                        'coco128'))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1, help='torch and cv2 threads')
    parser.add_argument('--workers', type=int, default=4, help='DataLoader workers (0: skip)')
    return parser.parse_args()


def build_dataset(data_root: str, pipeline: List[dict]):
    return DATASETS.build(dict(
        type='CocoDataset', data_root=data_root, ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='images/train2017/'), filter_cfg=dict(filter_empty_gt=True),
        pipeline=pipeline))


class TorchvisionPipeline:
    """The same steps in torchvision.transforms.v2, on detlab's parsed samples."""

    def __init__(self, samples: List[dict]) -> None:
        self.samples = samples
        self.transforms = v2.Compose([
            v2.Resize(800, max_size=1333, antialias=True),
            v2.RandomHorizontalFlip(0.5),
        ])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        info = self.samples[index]
        img = decode_image(read_file(info['img_path']), mode=ImageReadMode.RGB)
        boxes = torch.tensor([inst['bbox'] for inst in info['instances']],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([inst['bbox_label'] for inst in info['instances']])
        img, boxes = self.transforms(tv_tensors.Image(img), tv_tensors.BoundingBoxes(
            boxes, format='XYXY', canvas_size=img.shape[-2:]))
        return dict(inputs=img.as_subclass(torch.Tensor), boxes=boxes.as_subclass(torch.Tensor),
                    labels=labels)


def images_per_second(dataset) -> float:
    start = time.perf_counter()
    for index in range(len(dataset)):
        dataset[index]
    return len(dataset) / (time.perf_counter() - start)


def compare_speed(named: Dict[str, object], rounds: int) -> Dict[str, float]:
    speeds: Dict[str, List[float]] = {name: [] for name in named}
    names = list(named)
    for name in names:  # warm-up: file cache, lazy imports
        images_per_second(named[name])
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else names[::-1]:
            speeds[name].append(images_per_second(named[name]))
    return {name: statistics.median(values) for name, values in speeds.items()}


def memory_kib(pid: int) -> Dict[str, int]:
    """RSS and PSS of a process in KiB, from /proc/<pid>/smaps_rollup."""
    fields = {}
    with open(f'/proc/{pid}/smaps_rollup') as rollup:
        for line in rollup:
            parts = line.split()
            if parts[0] in ('Rss:', 'Pss:'):
                fields[parts[0][:-1].lower()] = int(parts[1])
    return fields


def worker_memory(dataset, workers: int) -> List[Dict[str, int]]:
    """Run one epoch with ``workers`` workers; memory of each worker at its end."""
    pids: List[int] = []
    loader = DataLoader(dataset, batch_size=2, num_workers=workers, collate_fn=pseudo_collate,
                        persistent_workers=True)
    for _ in loader:
        pass
    iterator = loader._iterator  # the persistent workers are still alive here
    pids = [worker.pid for worker in iterator._workers]
    usage = [memory_kib(pid) for pid in pids]
    iterator._shutdown_workers()
    return usage


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    register_all_modules()
    train_pipeline = Config.fromfile(BASE_CONFIG).train_pipeline
    dataset = build_dataset(args.data_root, train_pipeline)
    samples = [dataset.get_data_info(i) for i in range(len(dataset))]
    torchvision_pipeline = TorchvisionPipeline(samples)
    print(f'{len(dataset)} coco128 images with boxes, {args.rounds} rounds, '
          f'{args.threads} thread(s)')
    medians = compare_speed({'detlab': dataset, 'torchvision.v2': torchvision_pipeline},
                            args.rounds)
    for name, value in medians.items():
        print(f'{name:>15}: {value:7.1f} images/s (median)')
    print(f'ratio detlab / torchvision.v2: {medians["detlab"] / medians["torchvision.v2"]:.2f}x')
    if args.workers > 0:
        usage = worker_memory(dataset, args.workers)
        main_usage = memory_kib(os.getpid())
        print(f'memory with {args.workers} DataLoader workers (MiB): main process RSS '
              f'{main_usage["rss"] / 1024:.0f}, PSS {main_usage["pss"] / 1024:.0f}')
        for index, fields in enumerate(usage):
            print(f'  worker {index}: RSS {fields["rss"] / 1024:.0f}, '
                  f'PSS {fields["pss"] / 1024:.0f}')


if __name__ == '__main__':
    main()
