"""detlab's RetinaNet R50-FPN against torchvision's ``retinanet_resnet50_fpn``.

Same input for both: 2 images of 512x512 by default (random pixels, 3 random
boxes each), CPU, fp32, random initialisation, 80 classes, every backbone stage
trainable with BatchNorm in training mode (what torchvision builds without
weights). ``--device cuda --amp bf16 --batch 8 --size 800`` is the GPU case.

Two detlab variants are timed: ``detlab`` is MMDetection's RetinaNet config
as it is (P6 from C5, ``add_extra_convs='on_input'``: one 2048->256 conv more,
4.1M more parameters than torchvision); ``detlab-same-arch`` takes P6 from P5
as torchvision does (``'on_output'``), so the two compute the same network.
``detlab-per-image-targets`` is ``detlab-same-arch`` with the per-image target
assignment detlab used before the batched one; ``targets`` is the share of a
detlab train step spent assigning targets (``get_targets``, timed inside it).
Train step = forward + loss + backward + SGD step; inference = forward +
post-processing. The models alternate within every round, in an order
reversed every other round, so drifts in machine load hit all alike; the script
prints median times and the ratios (torchvision / detlab: above 1 means detlab is
faster), and the median of the ratios taken round by round, which drifts in load
bias less.

``--channels-last`` adds ``detlab-channels_last`` (the config key
``channels_last=True``: NHWC weights) and ``--compile`` adds ``detlab-compiled``
(``compile=True``: backbone and neck compiled in place, inductor), each of them
``detlab`` otherwise; both flags add ``detlab-channels_last-compiled`` too.
``--compile-head`` adds the same with the dense head's forward compiled as well
(``compile=dict(parts=['backbone', 'neck', 'head'])``, names ending in ``+head``).
``--models`` keeps only the named models and the peer (``--peer``, default
``torchvision``: ``--peer detlab`` compares the variants with eager detlab).
Every model's first train step and first inference are printed beside its
median: for compiled models that is the compile time (inductor compiles the
train graphs at the first train step and the eval-mode graphs at the first
inference; a second compiled model of the same network reuses much of the
first one's work in the same process, so the first compiled model pays most).
``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1`` leaves out inductor's on-disk caches
of earlier runs (a bare GPU machine has none).
On CUDA the script then prints each model's peak memory in a train step and in inference
(``torch.cuda.max_memory_allocated``, one model at a time: its weights, buffers, optimizer
state, gradients and activations, none of the other models') and the ratio to torchvision's.

    python benchmarks/bench_retinanet.py [--rounds 10] [--threads N]
        [--device cpu|cuda] [--amp none|bf16|fp16] [--batch 2] [--size 512]
        [--channels-last] [--compile] [--compile-head] [--models NAME,NAME] [--peer NAME]
"""
import argparse
import contextlib
import functools
import logging
import statistics
import time
from typing import Callable, Dict, Optional, Union

import torch
import torchvision
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from detlab.models.dense_heads import AnchorHead
from detlab.models.detectors.compile_parts import compile_detector
from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.mask import BitmapMasks
from detlab.utils import register_all_modules

IMAGE_SIZE = 512
NUM_IMAGES = 2
NUM_CLASSES = 80
BOXES_PER_IMAGE = 3
DEVICE = torch.device('cpu')
AMP_DTYPE = None  # torch.bfloat16 / torch.float16 under --amp


def autocast():
    if AMP_DTYPE is None:
        return contextlib.nullcontext()
    return torch.autocast(DEVICE.type, dtype=AMP_DTYPE)


def synchronize() -> None:
    if DEVICE.type == 'cuda':
        torch.cuda.synchronize()


class TargetTimer:
    """Seconds spent in ``AnchorHead.get_targets`` (synchronised on CUDA)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        original = AnchorHead.get_targets

        @functools.wraps(original)
        def timed_get_targets(head, *args, **kwargs):
            synchronize()
            start = time.perf_counter()
            result = original(head, *args, **kwargs)
            synchronize()
            self.seconds += time.perf_counter() - start
            return result

        AnchorHead.get_targets = timed_get_targets


def make_inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (NUM_IMAGES, 3, IMAGE_SIZE, IMAGE_SIZE), generator=generator,
                           dtype=torch.uint8)
    xy = torch.rand(NUM_IMAGES, BOXES_PER_IMAGE, 2, generator=generator) * IMAGE_SIZE * 0.6
    wh = 32 + torch.rand(NUM_IMAGES, BOXES_PER_IMAGE, 2, generator=generator) * IMAGE_SIZE * 0.3
    boxes = torch.cat([xy, xy + wh], dim=-1)
    labels = torch.randint(0, NUM_CLASSES, (NUM_IMAGES, BOXES_PER_IMAGE), generator=generator)
    return images.to(DEVICE), boxes.to(DEVICE), labels.to(DEVICE)


def optimise(losses: dict, optimizer, scaler=None) -> None:
    """One SGD step on the sum of a dict of losses (both models return one; detlab's
    anchor heads give a list per loss, one entry per level, summed as mmengine does)."""
    optimizer.zero_grad()
    loss = sum(sum(value) if isinstance(value, list) else value for value in losses.values())
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:  # fp16: dynamic loss scaling
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()


def build_detlab(images, boxes, labels, extra_convs: Optional[str] = 'on_input',
                 config: str = 'configs/retinanet/retinanet_r50_fpn_1x_coco.py',
                 options: Optional[dict] = None, batched_targets: bool = True,
                 channels_last: bool = False, compile_: Union[bool, dict] = False, masks=None):
    """detlab's model of ``config`` with every backbone stage trainable (BN in training mode)
    and its train-step and inference closures; ``extra_convs=None`` keeps the config's neck;
    ``options`` are ``--cfg-options``-style overrides (``{'model.backbone.style': ...}``);
    ``batched_targets=False`` assigns targets image by image; ``channels_last`` and
    ``compile_`` do what the config keys ``channels_last=True`` and ``compile=compile_`` do;
    ``masks`` (B, N, H, W) uint8 become each sample's gt ``BitmapMasks``."""
    cfg = Config.fromfile(config)
    if options:
        cfg.merge_from_dict(options)
    model_cfg = cfg.model
    if extra_convs is not None:
        model_cfg.neck.add_extra_convs = extra_convs
    model_cfg.backbone.init_cfg = None
    model_cfg.backbone.frozen_stages = -1
    model_cfg.backbone.norm_eval = False
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.to(DEVICE)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    compile_detector(model, compile_)
    if not batched_targets:
        model.bbox_head.sampler.supports_batch = False

    def batch():
        samples = []
        for i in range(NUM_IMAGES):
            sample = DetDataSample(metainfo=dict(
                img_shape=(IMAGE_SIZE, IMAGE_SIZE), ori_shape=(IMAGE_SIZE, IMAGE_SIZE),
                scale_factor=(1.0, 1.0)))
            sample.gt_instances = InstanceData(bboxes=boxes[i].clone(), labels=labels[i].clone())
            if masks is not None:
                sample.gt_instances.masks = BitmapMasks(masks[i].cpu().numpy(), IMAGE_SIZE,
                                                        IMAGE_SIZE)
            samples.append(sample)
        return dict(inputs=list(images), data_samples=samples)

    def train_step(optimizer, scaler=None):
        with autocast():
            data = model.data_preprocessor(batch(), training=True)
            losses = model(**data, mode='loss')
        optimise(losses, optimizer, scaler)

    def inference():
        with torch.no_grad(), autocast():
            data = model.data_preprocessor(batch(), training=False)
            model(**data, mode='predict')

    return model, train_step, inference


def build_torchvision(images, boxes, labels, builder=None, background_class: bool = False,
                      masks=None):
    """torchvision's ``builder`` (default ``retinanet_resnet50_fpn``) without weights, and its
    train-step and inference closures. With ``background_class`` torchvision's class 0 is the
    background, so the model gets NUM_CLASSES + 1 classes and the labels move up by one;
    ``masks`` (B, N, H, W) uint8 go into the targets."""
    builder = builder or torchvision.models.detection.retinanet_resnet50_fpn
    model = builder(weights=None, weights_backbone=None,
                    num_classes=NUM_CLASSES + int(background_class),
                    min_size=IMAGE_SIZE, max_size=IMAGE_SIZE).to(DEVICE)
    float_images = [image.float() / 255.0 for image in images]
    targets = [dict(boxes=boxes[i], labels=labels[i] + int(background_class))
               for i in range(NUM_IMAGES)]
    if masks is not None:
        for target, image_masks in zip(targets, masks):
            target['masks'] = image_masks

    def train_step(optimizer, scaler=None):
        with autocast():
            losses = model(float_images, targets)
        optimise(losses, optimizer, scaler)

    def inference():
        with torch.no_grad(), autocast():
            model(float_images)

    return model, train_step, inference


def timed(fn, *args) -> float:
    synchronize()
    start = time.perf_counter()
    fn(*args)
    synchronize()
    return time.perf_counter() - start


def parse_args(description: str, add_arguments=None, size: int = IMAGE_SIZE) -> argparse.Namespace:
    """The benchmarks' shared command line; sets the thread count and quiets init logs.
    ``add_arguments(parser)`` adds a benchmark's own options; ``size`` is ``--size``'s
    default."""
    global DEVICE, AMP_DTYPE, NUM_IMAGES, IMAGE_SIZE
    parser = argparse.ArgumentParser(description=description)
    if add_arguments is not None:
        add_arguments(parser)
    parser.add_argument('--rounds', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', choices=['cpu', 'cuda'], default='cpu')
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='none',
                        help='autocast dtype (fp16 adds dynamic loss scaling)')
    parser.add_argument('--batch', type=int, default=NUM_IMAGES)
    parser.add_argument('--size', type=int, default=size)
    parser.add_argument('--channels-last', action='store_true',
                        help='also time detlab with channels_last=True')
    parser.add_argument('--compile', action='store_true',
                        help='also time detlab with compile=True (backbone and neck)')
    parser.add_argument('--compile-head', action='store_true',
                        help='also time detlab with the dense head compiled too')
    parser.add_argument('--models', default=None,
                        help='comma-separated names of the models to time (the peer always; '
                             'bench_retinanet and bench_fcos)')
    parser.add_argument('--peer', default='torchvision',
                        help='the model the others are compared with (bench_retinanet and '
                             'bench_fcos; e.g. detlab to compare the variants with it)')
    args = parser.parse_args()
    DEVICE, NUM_IMAGES, IMAGE_SIZE = torch.device(args.device), args.batch, args.size
    AMP_DTYPE = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}[args.amp]
    if DEVICE.type == 'cuda':  # fp32 means fp32: no TF32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    if args.threads:
        torch.set_num_threads(args.threads)
    register_all_modules()
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)  # no per-layer init log
    return args


def compare(title: str, models: dict, rounds: int, warmup: int,
            peer: str = 'torchvision') -> None:
    """Time each model's train step and inference, interleaved, and print the medians
    and the ratios peer / detlab.

    Args:
        models (dict): name -> (model, train_step, inference); one named ``peer``.
        peer (str): the model every other one is compared with.
    """
    params = {name: sum(p.numel() for p in model.parameters())
              for name, (model, _, _) in models.items()}
    optimizers = {name: torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
                  for name, (model, _, _) in models.items()}
    times = {(name, kind): [] for name in models for kind in ('train', 'infer')}
    scaler = torch.amp.GradScaler(DEVICE.type) if AMP_DTYPE is torch.float16 else None
    target_timer, target_share = TargetTimer(), {name: [] for name in models}
    first = {}
    for round_index in range(warmup + rounds):
        order = list(models.items())
        for name, (model, train_step, inference) in order[::(-1) ** round_index]:
            model.train()
            target_timer.seconds = 0.0
            train_time = timed(train_step, optimizers[name], scaler)
            model.eval()
            infer_time = timed(inference)
            if round_index == 0:
                first[name] = (train_time, infer_time)
            if round_index >= warmup:
                times[(name, 'train')].append(train_time)
                times[(name, 'infer')].append(infer_time)
                target_share[name].append(target_timer.seconds / train_time)

    where = (torch.cuda.get_device_name() if DEVICE.type == 'cuda'
             else f'CPU, {torch.get_num_threads()} threads')
    precision = 'fp32' if AMP_DTYPE is None else f'{AMP_DTYPE} autocast'
    print(f'{title}, {NUM_IMAGES} images {IMAGE_SIZE}x{IMAGE_SIZE}, {where}, {precision}, '
          f'{rounds} rounds (median seconds)')
    print('parameters: ' + '  '.join(f'{name} {count:,}' for name, count in params.items()))
    for kind in ('train', 'infer'):
        peer_time = statistics.median(times[(peer, kind)])
        for name in (name for name in models if name != peer):
            detlab_time = statistics.median(times[(name, kind)])
            share = statistics.median(target_share[name])
            targets = f'  targets {100 * share:.1f}% of the step' if kind == 'train' and share else ''
            per_round = statistics.median(
                a / b for a, b in zip(times[(peer, kind)], times[(name, kind)]))
            print(f'{kind:5s}: {name:24s} {detlab_time:.3f}s  {peer} {peer_time:.3f}s  '
                  f'ratio {peer}/{name} = {peer_time / detlab_time:.2f}x '
                  f'(per round {per_round:.2f}x){targets}')
    for name in models:
        train_first, infer_first = first[name]
        print(f'first: {name:24s} train step {train_first:.3f}s '
              f'({train_first - statistics.median(times[(name, "train")]):+.3f}s over the '
              f'median), inference {infer_first:.3f}s '
              f'({infer_first - statistics.median(times[(name, "infer")]):+.3f}s)')
    if DEVICE.type == 'cuda':
        print_peak_memory(models, optimizers, scaler, peer)


def state_bytes(model, optimizer) -> int:
    """Bytes of a model's parameters and buffers and of its optimizer's state tensors."""
    tensors = [*model.parameters(), *model.buffers()]
    tensors += [value for state in optimizer.state.values() for value in state.values()
                if isinstance(value, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors)


def step_peak_bytes(model, optimizer, step, *args) -> int:
    """Peak CUDA memory of one call of ``step``, counting this model's own weights, buffers
    and optimizer state but none of the other models resident beside it: every gradient is
    dropped first, the peak above the memory then allocated is measured with
    ``torch.cuda.reset_peak_memory_stats``/``max_memory_allocated`` and the model's state is
    added."""
    optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    baseline = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step(*args)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - baseline
    optimizer.zero_grad(set_to_none=True)
    return peak + state_bytes(model, optimizer)


def print_peak_memory(models: dict, optimizers: dict, scaler, peer: str) -> None:
    """Each model's peak CUDA memory in a train step and in inference (MiB), measured one
    model at a time after the timed rounds, and the ratio to ``peer``'s."""
    peaks = {}
    for name, (model, train_step, inference) in models.items():
        model.train()
        train = step_peak_bytes(model, optimizers[name], train_step, optimizers[name], scaler)
        model.eval()
        infer = step_peak_bytes(model, optimizers[name], inference)
        peaks[name] = dict(train=train / 2**20, infer=infer / 2**20)
    for kind in ('train', 'infer'):
        peer_peak = peaks[peer][kind]
        for name in (name for name in models if name != peer):
            print(f'peak memory {kind:5s}: {name:24s} {peaks[name][kind]:8.0f} MiB  {peer} '
                  f'{peer_peak:8.0f} MiB  ratio {name}/{peer} = '
                  f'{peaks[name][kind] / peer_peak:.2f}')


def compiled_variants(args, build: Callable[..., tuple]) -> Dict[str, Callable[[], tuple]]:
    """Builders of the channels_last and compiled variants that the flags ask for, by name;
    ``build(channels_last=..., compile_=...)`` builds one."""
    layouts = [False] + [True] * args.channels_last
    compiles = [False] + [True] * args.compile
    compiles += [dict(parts=['backbone', 'neck', 'head'])] * args.compile_head
    variants = {}
    for channels_last in layouts:
        for compile_ in compiles:
            if channels_last or compile_:
                name = ('detlab' + '-channels_last' * channels_last + '-compiled' * bool(compile_)
                        + '+head' * isinstance(compile_, dict))
                variants[name] = functools.partial(build, channels_last=channels_last,
                                                   compile_=compile_)
    return variants


def build_selected(builders: Dict[str, Callable[[], tuple]], selection: Optional[str],
                   peer: str = 'torchvision') -> dict:
    """Build the models ``selection`` names (comma-separated; all when None) and the peer."""
    names = list(builders) if selection is None else selection.split(',')
    unknown = [name for name in names + [peer] if name not in builders]
    if unknown:
        raise SystemExit(f'--models: unknown model(s) {unknown}; known: {list(builders)}')
    return {name: builders[name]() for name in builders if name in names or name == peer}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    images, boxes, labels = make_inputs()
    build = functools.partial(build_detlab, images, boxes, labels)
    builders = {'detlab': build,
                'detlab-same-arch': functools.partial(build, extra_convs='on_output'),
                'detlab-per-image-targets': functools.partial(build, 'on_output',
                                                              batched_targets=False),
                'torchvision': functools.partial(build_torchvision, images, boxes, labels)}
    builders.update(compiled_variants(args, build))
    compare('RetinaNet R50-FPN', build_selected(builders, args.models, args.peer), args.rounds,
            args.warmup, args.peer)


if __name__ == '__main__':
    main()
