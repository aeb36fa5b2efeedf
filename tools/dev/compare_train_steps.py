"""Compare the training arithmetic of two detlab trees bit for bit.

Find where two versions of detlab (say, before and after a refactor) start to
train differently: ``dump`` runs the first iterations of a config with the
tree on ``PYTHONPATH`` and saves, for iterations 0 and 1, the batch, every
loss and every parameter's gradient, and the weights after the last
iteration; ``compare`` lists what differs between two dumps (torch.equal).

    PYTHONPATH=/tmp/old python tools/dev/compare_train_steps.py dump CONFIG old.pt --iters 40
    PYTHONPATH=$PWD python tools/dev/compare_train_steps.py dump CONFIG new.pt --iters 40
    python tools/dev/compare_train_steps.py compare old.pt new.pt

CPU kernels can round differently with the thread count (each thread's share
of an element-wise op ends in a scalar tail), so set ``OMP_NUM_THREADS=1`` to
separate a change of arithmetic from a change of tensor layout.
"""
import argparse
import tempfile

import torch
from mmengine.hooks import Hook

#: Iterations whose losses and gradients are dumped.
PROBED_ITERS = (0, 1)


def as_tensors(value):
    """A loss (a tensor or a list of per-level tensors) as detached tensors."""
    if isinstance(value, (list, tuple)):
        return [item.detach().clone() for item in value]
    return value.detach().clone()


class StepProbe(Hook):
    """Before iterations ``PROBED_ITERS``, computes the losses and gradients
    of the batch the run is about to train on, then restores the weights and
    buffers so the run goes on as without the probe."""

    def __init__(self) -> None:
        self.steps = {}

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if batch_idx not in PROBED_ITERS:
            return
        model = runner.model
        state = {key: value.clone() for key, value in model.state_dict().items()}
        data = model.data_preprocessor(data_batch, True)
        losses = model(**data, mode='loss')
        total, _ = model.parse_losses(losses)
        model.zero_grad()
        total.backward()
        grads = {name: param.grad.clone() for name, param in model.named_parameters()
                 if param.grad is not None}
        model.zero_grad()
        model.load_state_dict(state)  # BatchNorm statistics as before the probe
        self.steps[batch_idx] = dict(
            inputs=data['inputs'].clone(), state=state, total=total.detach(), grads=grads,
            losses={key: as_tensors(value) for key, value in losses.items()})


def dump(config: str, out: str, iters: int) -> None:
    from detlab.engine.runner import build_runner
    from detlab.utils import load_config, register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = load_config(config, None, 'none', tempfile.mkdtemp(prefix='compare_train_steps_'))
    cfg.train_cfg.max_iters = iters
    cfg.train_cfg.val_interval = iters + 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    runner = build_runner(cfg)
    probe = StepProbe()
    runner.register_hook(probe, priority='VERY_LOW')
    runner.train()
    final = {key: value.clone() for key, value in runner.model.state_dict().items()}
    torch.save(dict(steps=probe.steps, final=final, threads=torch.get_num_threads()), out)
    print(f'saved {out} ({iters} iterations, {torch.get_num_threads()} threads)')


def differing(first: dict, second: dict) -> list:
    """Keys whose tensors are not bit-identical, with the largest absolute difference."""
    return [(key, float((first[key].double() - second[key].double()).abs().max()))
            for key in first if not torch.equal(first[key], second[key])]


def compare(first_path: str, second_path: str) -> None:
    first = torch.load(first_path, weights_only=True)
    second = torch.load(second_path, weights_only=True)
    print(f'threads: {first["threads"]} and {second["threads"]}')
    for step in PROBED_ITERS:
        one, two = first['steps'][step], second['steps'][step]
        print(f'--- iteration {step}')
        print('inputs equal:', torch.equal(one['inputs'], two['inputs']))
        print('weights differing:', differing(one['state'], two['state'])[:5])
        for key in one['losses']:
            sums = [value if torch.is_tensor(value) else sum(value)
                    for value in (one['losses'][key], two['losses'][key])]
            print(f'{key}: {sums[0].item():.9g} and {sums[1].item():.9g}, '
                  f'bit-identical: {torch.equal(*sums)}')
        grads = differing(one['grads'], two['grads'])
        print(f'gradients differing: {len(grads)} of {len(one["grads"])}', grads[:5])
    final = differing(first['final'], second['final'])
    print(f'weights differing at the end: {len(final)} of {len(first["final"])}', final[:5])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    dump_parser = commands.add_parser('dump', help='train a few iterations and save the probe')
    dump_parser.add_argument('config')
    dump_parser.add_argument('out')
    dump_parser.add_argument('--iters', type=int, default=2)
    compare_parser = commands.add_parser('compare', help='list what differs between two dumps')
    compare_parser.add_argument('first')
    compare_parser.add_argument('second')
    args = parser.parse_args()
    if args.command == 'dump':
        if args.iters < max(PROBED_ITERS) + 1:
            parser.error(f'--iters must be at least {max(PROBED_ITERS) + 1}, got {args.iters}')
        dump(args.config, args.out, args.iters)
    else:
        compare(args.first, args.second)


if __name__ == '__main__':
    main()
