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

With ``--stages``, a third contestant in the same interleaved rounds: the
bare pixel work, ``cv2.imdecode`` + ``cv2.resize`` + ``cv2.flip`` half the
time (the ratio a pipeline spending nothing beyond those calls would reach:
the ceiling for the 1.2x target), then the time of each stage of the three.

    python benchmarks/bench_pipeline.py [--data-root ../shared/data/coco128] [--rounds 5]
        [--stages] [--workers 4]
"""
import argparse
import os
import os.path as osp
import statistics
import time
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np
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
BARE = 'cv2 decode+resize+flip'


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', default=osp.join(REPO_ROOT, '..', 'shared', 'data',
                                                        'coco128'))
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1, help='torch and cv2 threads')
    parser.add_argument('--workers', type=int, default=4, help='DataLoader workers (0: skip)')
    parser.add_argument('--stages', action='store_true',
                        help='also run the bare pixel work (cv2 decode + resize + flip) as the '
                        'ceiling, and time each stage of the three')
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
        self.resize = v2.Resize(800, max_size=1333, antialias=True)
        self.flip = v2.RandomHorizontalFlip(0.5)

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> Tuple[tv_tensors.Image, tv_tensors.BoundingBoxes, torch.Tensor]:
        info = self.samples[index]
        img = decode_image(read_file(info['img_path']), mode=ImageReadMode.RGB)
        boxes = torch.tensor([inst['bbox'] for inst in info['instances']],
                             dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([inst['bbox_label'] for inst in info['instances']])
        return tv_tensors.Image(img), tv_tensors.BoundingBoxes(
            boxes, format='XYXY', canvas_size=img.shape[-2:]), labels

    def __getitem__(self, index: int) -> Dict[str, torch.Tensor]:
        img, boxes, labels = self.load(index)
        img, boxes = self.flip(*self.resize(img, boxes))
        return dict(inputs=img.as_subclass(torch.Tensor), boxes=boxes.as_subclass(torch.Tensor),
                    labels=labels)

    def stages(self) -> List[Tuple[str, Callable]]:
        """The steps of ``__getitem__`` one by one, each taking the last one's output."""
        return [('decode + boxes', self.load), ('Resize', lambda out: (*self.resize(*out[:2]),
                                                                       out[2])),
                ('RandomHorizontalFlip', lambda out: (*self.flip(*out[:2]), out[2]))]


class BarePixelWork:
    """Only the pixel work of the pipeline, in the calls that give MMDetection's pixels:
    ``cv2.imdecode``, ``cv2.resize`` to the pipeline's size and, half the time,
    ``cv2.flip``. No pipeline built on them (as MMDetection's and detlab's are) can beat it."""

    def __init__(self, samples: List[dict]) -> None:
        self.samples = samples
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return len(self.samples)

    def decode(self, index: int) -> np.ndarray:
        return cv2.imdecode(np.fromfile(self.samples[index]['img_path'], np.uint8),
                            cv2.IMREAD_COLOR)

    @staticmethod
    def resize(img: np.ndarray) -> np.ndarray:
        height, width = img.shape[:2]
        scale = min(1333 / max(height, width), 800 / min(height, width))
        return cv2.resize(img, (int(width * scale + 0.5), int(height * scale + 0.5)),
                          interpolation=cv2.INTER_LINEAR)

    def flip(self, img: np.ndarray) -> np.ndarray:
        return cv2.flip(img, 1) if self.rng.random() < 0.5 else img

    def __getitem__(self, index: int) -> np.ndarray:
        return self.flip(self.resize(self.decode(index)))

    def stages(self) -> List[Tuple[str, Callable]]:
        return [('cv2.imdecode', self.decode), ('cv2.resize', self.resize),
                ('cv2.flip', self.flip)]


class DetlabStages:
    """detlab's dataset, its ``get_data_info`` and transforms timed one by one."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def stages(self) -> List[Tuple[str, Callable]]:
        return [('get_data_info', self.dataset.get_data_info)] + [
            (type(transform).__name__, transform) for transform in self.dataset.pipeline.transforms]


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


def stage_ms(stages: List[Tuple[str, Callable]], count: int, rounds: int) -> Dict[str, float]:
    """Median over rounds of each stage's mean ms per image; the first stage takes the index."""
    per_round: Dict[str, List[float]] = {name: [] for name, _ in stages}
    for _ in range(rounds):
        totals = dict.fromkeys(per_round, 0.0)
        for index in range(count):
            value = index
            for name, stage in stages:
                start = time.perf_counter()
                value = stage(value)
                totals[name] += time.perf_counter() - start
        for name, total in totals.items():
            per_round[name].append(total / count * 1e3)
    return {name: statistics.median(values) for name, values in per_round.items()}


def print_stages(named: Dict[str, object], count: int, rounds: int) -> None:
    """Where each pipeline's time goes, stage by stage."""
    print('ms per image, stage by stage (median of rounds; not interleaved, so noisier):')
    for name, pipeline in named.items():
        stages = stage_ms(pipeline.stages(), count, rounds)
        parts = ', '.join(f'{stage} {ms:.2f}' for stage, ms in stages.items())
        print(f'  {name}: {parts}; total {sum(stages.values()):.2f}')


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
    contestants = {'detlab': dataset, 'torchvision.v2': torchvision_pipeline}
    if args.stages:
        contestants[BARE] = BarePixelWork(samples)
    medians = compare_speed(contestants, args.rounds)
    for name, value in medians.items():
        print(f'{name:>22}: {value:7.1f} images/s (median)')
    print(f'ratio detlab / torchvision.v2: {medians["detlab"] / medians["torchvision.v2"]:.2f}x')
    if args.stages:
        ceiling = medians[BARE] / medians['torchvision.v2']
        print(f'ceiling, bare cv2 decode + resize + flip / torchvision.v2: {ceiling:.2f}x')
        print(f'detlab / bare ceiling: {medians["detlab"] / medians[BARE]:.2f}')
        print_stages({'detlab': DetlabStages(dataset), 'torchvision.v2': torchvision_pipeline,
                      BARE: contestants[BARE]}, len(dataset),
                     args.rounds)
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
