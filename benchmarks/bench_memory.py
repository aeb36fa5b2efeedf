"""Peak memory of one train step, detlab against torchvision, from the profiler's timeline.

For one model pair (``--model retinanet|fcos|faster_rcnn|mask_rcnn``: the models, input and
options of bench_retinanet.py, bench_fcos.py, bench_faster_rcnn.py and bench_mask_rcnn.py,
with detlab's network the one matching torchvision's: RetinaNet's P6 from P5, FCOS's
``SAME_ARCH`` options) each model runs in its own subprocess, so one model's allocations
cannot shape the other's: it is built, takes one warm-up train step (which creates the SGD
momentum buffers) and one train step under ``torch.profiler`` with ``profile_memory``. The
profiler's memory profile lists every tensor allocation and free with its size and a
category (parameter, optimizer state, input, activation, gradient, temporary, autograd
detail, unknown). Replaying it gives the peak of the tensor bytes alive during the step,
the split of the bytes alive at that moment by category, and (``--top N``) the N largest
groups of tensors alive then, grouped by where they were created (the first frame outside
torch on the Python stack, or the autograd node for a tensor made in backward) and by the
creating op, and the N files whose tensors hold the most, so what holds the memory can be
read off. The script prints each model's figures and the ratio detlab / torchvision.

This counts tensor bytes seen by the profiler on the CPU: there is no allocator caching
and no cuDNN workspace, and CPU kernels choose their own temporaries, so it is a proxy for
CUDA's ``torch.cuda.max_memory_allocated``, not the same number. The GPU figure is the
peak-memory line bench_retinanet.py (and the benchmarks built on it) print with
``--device cuda``. ``--amp bf16`` runs the steps under CPU autocast. The warm-up's
gradients are dropped before the profiled step (mmengine frees them after every step), and
detlab's RoIAlign pools on the calling thread in it, as on CUDA (the profiler sees the
allocations of its own thread only).

    python benchmarks/bench_memory.py --model retinanet [--batch 2] [--size 512]
        [--amp none|bf16|fp16] [--top 10] [--threads N] [--fused-focal-loss]

``--fused-focal-loss`` makes detlab's FocalLoss take on the CPU the fused loss it takes on
CUDA (it keeps only the logits and labels for backward), so the CPU profile shows the memory
of the CUDA path.
"""
import collections
import json
import re
import subprocess
import sys
import time
from unittest import mock

import torch
import torchvision
from torch.profiler import profile
from torch.profiler._memory_profiler import Action, Category, TensorKey

MODEL_NAMES = ('retinanet', 'fcos', 'faster_rcnn', 'mask_rcnn')
CATEGORY_NAMES = {None: 'unknown', **{category: category.name.lower() for category in Category}}
MIB = 2**20
PYTHON_FRAME = re.compile(r'.+\.py\(\d+\): ')  # the profiler's name of a Python call


def build(model_name: str, library: str):
    """(model, train_step) of ``library`` ('detlab' or 'torchvision') for ``model_name``,
    as the model's own benchmark builds it."""
    import bench_retinanet  # imported here so that the profile analysis loads without it
    from bench_retinanet import build_detlab, build_torchvision, make_inputs
    images, boxes, labels = make_inputs()
    if model_name == 'retinanet':
        if library == 'detlab':
            model, step, _ = build_detlab(images, boxes, labels, extra_convs='on_output')
        else:
            model, step, _ = build_torchvision(images, boxes, labels)
    elif model_name == 'fcos':
        from bench_fcos import CONFIG, SAME_ARCH
        if library == 'detlab':
            model, step, _ = build_detlab(images, boxes, labels, extra_convs=None, config=CONFIG,
                                          options=SAME_ARCH)
        else:
            model, step, _ = build_torchvision(images, boxes, labels,
                                               torchvision.models.detection.fcos_resnet50_fpn)
    else:
        if model_name == 'faster_rcnn':
            from bench_faster_rcnn import CONFIG
            builder, masks = torchvision.models.detection.fasterrcnn_resnet50_fpn, None
        else:
            from bench_mask_rcnn import CONFIG, ellipse_masks
            builder = torchvision.models.detection.maskrcnn_resnet50_fpn
            masks = ellipse_masks(boxes, bench_retinanet.IMAGE_SIZE)
        if library == 'detlab':
            model, step, _ = build_detlab(images, boxes, labels, extra_convs=None, config=CONFIG,
                                          masks=masks)
        else:
            model, step, _ = build_torchvision(images, boxes, labels, builder,
                                               background_class=True, masks=masks)
    return model, step


def profile_step(step, *args):
    """``torch.profiler`` memory profile of one call of ``step(*args)``."""
    with profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True,
                 record_shapes=True, with_stack=True) as profiler:
        step(*args)
    return profiler._memory_profile()


def creation_site(event) -> str:
    """Where the op ``event`` ran: 'backward of <autograd node>' inside the autograd engine,
    else the innermost Python frame outside torch ('detlab/models/...py(123): forward')."""
    frame = event.parent
    while frame is not None:
        name = frame.name
        if name.startswith('autograd::engine::evaluate_function: '):
            return 'backward of ' + name.split(': ', 1)[1]
        if PYTHON_FRAME.match(name) and not name.startswith('torch/'):
            for package in ('detlab/', 'torchvision/', 'benchmarks/', 'mmengine/'):
                if package in name:
                    return package + name.split(package, 1)[1]
            return name
        frame = frame.parent
    return '?'


def peak_of(memory_profile, device: torch.device, top: int = 0) -> dict:
    """Replay ``memory_profile``'s timeline on ``device``: the peak of the bytes alive, the
    bytes alive then by category, and the ``top`` largest groups of the tensors alive then
    (by creation site, op and category: bytes, count)."""
    timeline = [event for event in memory_profile.timeline if event[2][0].device == device]
    total, peak, peak_index = 0, -1, -1
    for index, (_, action, _, nbytes) in enumerate(timeline):
        if action in (Action.PREEXISTING, Action.CREATE):
            total += nbytes
        elif action == Action.DESTROY:
            total -= nbytes
        if total > peak:
            peak, peak_index = total, index
    baseline = sum(nbytes for _, action, _, nbytes in timeline if action == Action.PREEXISTING)

    live, unknown = {}, 0  # TensorKey -> (bytes, version); allocations the profiler can't key
    preexisting = set()
    for _, action, (key, version), nbytes in timeline[:peak_index + 1]:
        if not isinstance(key, TensorKey):
            unknown += {Action.PREEXISTING: nbytes, Action.CREATE: nbytes,
                        Action.DESTROY: -nbytes}.get(action, 0)
        elif action in (Action.PREEXISTING, Action.CREATE):
            live[key] = (nbytes, version)
            if action == Action.PREEXISTING:
                preexisting.add(key)
        elif action == Action.INCREMENT_VERSION:
            live[key] = (nbytes, version + 1)
        elif action == Action.DESTROY:
            live.pop(key, None)

    creator = {}  # TensorKey -> the op that allocated it (an output, or a buffer inside it)
    if top:
        for node in memory_profile._data_flow_graph.flow_nodes:
            for key in node.intermediates:
                creator[key] = node._event
            for key, version in node.outputs.items():
                if version == 0:
                    creator[key] = node._event
    by_category = collections.Counter({'unknown': unknown} if unknown else {})
    groups = collections.defaultdict(lambda: [0, 0])
    for key, (nbytes, version) in live.items():
        category = CATEGORY_NAMES[memory_profile._categories.get(key, version)]
        by_category[category] += nbytes
        if top:
            event = creator.get(key)
            site = ((creation_site(event), event.name) if event is not None
                    else ('(alive before the step)' if key in preexisting else '?', '-'))
            group = groups[(*site, category)]
            group[0] += nbytes
            group[1] += 1
    largest = sorted(([*group, *value] for group, value in groups.items()),
                     key=lambda row: -row[3])[:top]
    by_file = collections.Counter()  # the same bytes by the creation site's file
    for (site, _, _), (nbytes, _) in groups.items():
        by_file[site.split('(')[0] if PYTHON_FRAME.match(site) else site] += nbytes
    return dict(peak=peak, baseline=baseline, by_category=dict(by_category), top=largest,
                by_file=by_file.most_common(top))


def measure(model_name: str, library: str, top: int, fused_focal_loss: bool = False) -> dict:
    """Build ``library``'s model, take a warm-up train step, profile one train step;
    ``fused_focal_loss``: detlab's focal loss takes its CUDA path on the CPU too."""
    if fused_focal_loss and library == 'detlab':
        import importlib
        focal_loss = importlib.import_module('detlab.models.losses.focal_loss')
        with mock.patch.object(focal_loss, 'fused_focal_loss_on', return_value=True):
            return measure(model_name, library, top)
    import bench_retinanet
    torch.manual_seed(0)
    model, step = build(model_name, library)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    scaler = (torch.amp.GradScaler(bench_retinanet.DEVICE.type)
              if bench_retinanet.AMP_DTYPE is torch.float16 else None)
    step(optimizer, scaler)
    # The step sets the gradients to None only before its backward; drop the warm-up's now,
    # as mmengine's optimizer wrapper does after every step (and as the profiler would not
    # see them freed: a free outside an op leaves a tensor from before profiling alive).
    optimizer.zero_grad(set_to_none=True)
    start = time.perf_counter()
    # The profiler sees the allocations of the thread it runs on: detlab's CPU RoIAlign,
    # which pools chunks of RoIs on a thread pool (in fp32), pools on the calling thread
    # here, as it does on CUDA, so that its chunks are neither missed nor kept alive forever.
    from detlab.models.roi_heads.roi_extractors import roi_align
    for attempt in range(2):
        with mock.patch.object(roi_align, 'roi_align_threads', return_value=1):
            memory_profile = profile_step(step, optimizer, scaler)
        result = peak_of(memory_profile, bench_retinanet.DEVICE, top)
        if result['peak'] > result['baseline']:
            break
        # Seen once in a long run: every allocation of the step listed as existing before
        # it, so nothing is created or freed; the profile is taken again.
        print(f'{library}: the profile shows no allocation in the step; profiling again',
              file=sys.stderr)
    else:
        sys.exit(f'{library}: the profiler saw no allocation in the train step')
    result['seconds'] = time.perf_counter() - start
    return result


def add_arguments(parser) -> None:
    parser.add_argument('--model', choices=MODEL_NAMES, default='retinanet')
    parser.add_argument('--top', type=int, default=0,
                        help='also print the N largest groups of tensors alive at the peak')
    parser.add_argument('--fused-focal-loss', action='store_true',
                        help="detlab's FocalLoss takes the fused loss it takes on CUDA "
                             '(SigmoidFocalLossFunction) also on the CPU, to measure that path')
    parser.add_argument('--library', choices=['detlab', 'torchvision'], default=None,
                        help='measure this one model in this process and print JSON '
                             '(what each subprocess runs)')


def report(name: str, result: dict) -> None:
    split = ', '.join(f'{category} {nbytes / MIB:.0f}' for category, nbytes in
                      sorted(result['by_category'].items(), key=lambda item: -item[1])
                      if nbytes >= MIB / 2)
    print(f'{name:12s} peak {result["peak"] / MIB:8.0f} MiB  (before the step '
          f'{result["baseline"] / MIB:.0f}; at the peak, MiB: {split}; profiled and '
          f'replayed in {result["seconds"]:.0f} s)')
    for site, op, category, nbytes, count in result['top']:
        print(f'    {nbytes / MIB:8.1f} MiB {count:5d} tensors  {category:12s} {op:28s} {site}')
    if result['by_file']:
        print('  by file:  ' + ', '.join(f'{site} {nbytes / MIB:.0f}'
                                         for site, nbytes in result['by_file']))


def main() -> None:
    import bench_retinanet
    args = bench_retinanet.parse_args(__doc__.splitlines()[0], add_arguments)
    if bench_retinanet.DEVICE.type != 'cpu':
        sys.exit('bench_memory.py: --device must be cpu (it reads the CPU profiler\'s memory '
                 'timeline); on CUDA bench_retinanet.py --device cuda prints the peak memory')
    if args.library is not None:
        print(json.dumps(measure(args.model, args.library, args.top, args.fused_focal_loss)))
        return
    results = {}
    for library in ('detlab', 'torchvision'):
        command = [sys.executable, __file__, *sys.argv[1:], '--library', library]
        output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
        results[library] = json.loads(output.strip().splitlines()[-1])
    precision = 'fp32' if args.amp == 'none' else f'{args.amp} autocast'
    print(f'{args.model}: one train step, {args.batch} images {args.size}x{args.size}, '
          f'{precision}, CPU, tensor bytes from the profiler (MiB = 2**20 bytes)')
    for library, result in results.items():
        report(library, result)
    ratio = results['detlab']['peak'] / results['torchvision']['peak']
    print(f'ratio detlab / torchvision = {ratio:.3f}')


if __name__ == '__main__':
    main()
