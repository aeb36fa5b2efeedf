"""Where an RTMDet train step goes: per-stage process CPU time of detlab's model and
MMDetection's, interleaved, on bench_rtmdet.py's batch and weights.

Stages: backbone, neck and head forward, ``get_targets``, the rest of ``loss_by_feat``,
backward, SGD step. Process CPU time rather than wall time, so the split holds up on a shared
machine; ``--threads 1`` keeps it closest to the work done (with more threads, set
``OMP_WAIT_POLICY=PASSIVE`` so waiting threads do not spin). ``--channels-last`` adds detlab's
model with NHWC convolution weights. Not run by CI (it needs MMDetection's wheel)::

    python benchmarks/profile_rtmdet_step.py [--arch tiny|s] [--rounds 5] [--threads 1]
        [--channels-last]
"""
import copy
import statistics
import time

import torch

import bench_retinanet as common
import bench_rtmdet

STAGES = ('backbone', 'neck', 'head', 'get_targets', 'loss_by_feat', 'backward', 'sgd_step',
          'step')


def timed_stages(model) -> dict:
    """Wrap ``model``'s stages to append their CPU seconds to the returned dict's lists."""
    seconds = {stage: [] for stage in STAGES}

    def wrap(owner, attribute: str, stage: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.process_time()
            result = original(*args, **kwargs)
            seconds[stage].append(time.process_time() - start)
            return result
        setattr(owner, attribute, timed)

    wrap(model.backbone, 'forward', 'backbone')
    wrap(model.neck, 'forward', 'neck')
    wrap(model.bbox_head, 'forward', 'head')
    wrap(model.bbox_head, 'loss_by_feat', 'loss_by_feat')
    wrap(model.bbox_head, 'get_targets', 'get_targets')
    return seconds


def main() -> None:
    args = common.parse_args(
        __doc__.splitlines()[0], size=640,
        add_arguments=lambda parser: parser.add_argument(
            '--arch', choices=sorted(bench_rtmdet.CONFIGS), default='tiny'))
    bench_rtmdet.import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample as MMDetSample

    from detlab.registry import MODELS
    from detlab.structures import DetDataSample
    torch.manual_seed(0)
    images, boxes, labels = common.make_inputs()
    inputs = (images.float() - 114.0) / 58.0
    cfg = bench_rtmdet.model_cfg(args.arch)
    detlab_model = bench_rtmdet.build(MODELS, 'detlab', cfg)
    detlab_model.init_weights()
    mmdet_model = bench_rtmdet.build(MMDET_MODELS, 'mmdet', cfg)
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    models = {'detlab': (detlab_model, DetDataSample), 'mmdet': (mmdet_model, MMDetSample)}
    if args.channels_last:
        models['detlab-channels_last'] = (
            copy.deepcopy(detlab_model).to(memory_format=torch.channels_last), DetDataSample)

    runs = {}
    for name, (model, sample_type) in models.items():
        model.train()
        seconds = timed_stages(model)
        runs[name] = (model, sample_type, seconds,
                      torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))

    for round_index in range(args.warmup + args.rounds):
        for name in list(runs)[::(-1) ** round_index]:
            model, sample_type, seconds, optimizer = runs[name]
            samples = bench_rtmdet.make_samples(sample_type, boxes, labels, inputs.shape[-1])
            start = time.process_time()
            losses = model.loss(inputs, samples)
            optimizer.zero_grad()
            loss = sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())
            before_backward = time.process_time()
            loss.backward()
            before_step = time.process_time()
            optimizer.step()
            end = time.process_time()
            seconds['backward'].append(before_step - before_backward)
            seconds['sgd_step'].append(end - before_step)
            seconds['step'].append(end - start)

    print(f'RTMDet-{args.arch}, {common.NUM_IMAGES} images {common.IMAGE_SIZE}x'
          f'{common.IMAGE_SIZE}, {torch.get_num_threads()} threads, {args.rounds} rounds: median '
          'process CPU seconds (get_targets is part of loss_by_feat)')
    print(f"{'':14s}" + ''.join(f'{name:>22s}' for name in runs))
    for stage in STAGES:
        print(f'{stage:14s}' + ''.join(
            f'{statistics.median(seconds[stage][-args.rounds:]):22.4f}'
            for _, _, seconds, _ in runs.values()))
    mmdet_step = statistics.median(runs['mmdet'][2]['step'][-args.rounds:])
    for name, (_, _, seconds, _) in runs.items():
        steps = seconds['step'][-args.rounds:]
        print(f'{name}: steps {" ".join(f"{s:.3f}" for s in steps)}  '
              f'mmdet/{name} = {mmdet_step / statistics.median(steps):.2f}x')


if __name__ == '__main__':
    main()
