"""Train a detector: ``python tools/train.py CONFIG [options]``.

Reads the config, applies the command-line overrides and hands it to the
config's runner (detlab's configs: DetRunner, detlab/engine/runner).
Multi-process: ``tools/dist_train.sh CONFIG N`` (torchrun, ``--launcher
pytorch``): NCCL on GPUs, gloo on a CPU-only machine.
"""
import argparse
import os

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from detlab.engine.distributed import distributed_process
from detlab.engine.faults import reported_worker_failures
from detlab.engine.optimizers import AMP_MODES
from detlab.engine.runner import build_runner
from detlab.utils import CfgOptionsAction, load_config, register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a detector')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--amp', nargs='?', const='fp16', choices=sorted(AMP_MODES),
        help='mixed precision: fp16 (the default of a bare --amp: dynamic loss scaling, CUDA) '
        'or bf16 (no loss scaling; CUDA or CPU)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual total batch size')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a path, from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--cfg-options', nargs='+', action=CfgOptionsAction,
        help='override config settings, e.g. train_cfg.max_iters=100 '
        "model.bbox_head.num_classes=3 (lists as 'key=[a,b]')")
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_amp(cfg: Config, mode: str) -> None:
    """Switch the config's optimizer wrapper to mixed precision ``mode`` (fp16/bf16)."""
    if mode == 'fp16' and not torch.cuda.is_available():
        raise SystemExit('--amp fp16 needs a CUDA GPU and this machine has none; use --amp bf16 '
                         'on the CPU, or leave out --amp to train in fp32.')
    wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or AmpOptimWrapper, '
                         f'got {wrapper}.')
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.update(AMP_MODES[mode])


def build_cfg(args: argparse.Namespace) -> Config:
    """The config the runner gets: the file, then the command-line overrides."""
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir)

    if args.amp is not None:
        apply_amp(cfg, args.amp)

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise RuntimeError('--auto-scale-lr needs `auto_scale_lr = dict(enable=..., '
                               'base_batch_size=...)` in the config.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    return cfg


def train(args: argparse.Namespace) -> Runner:
    """Build the config and the Runner from ``args`` and train; returns the Runner."""
    register_all_modules(init_default_scope=False)
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    with reported_worker_failures():
        runner.train()
    return runner


def main() -> None:
    with distributed_process():
        train(parse_args())


if __name__ == '__main__':
    main()
