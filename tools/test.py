"""Evaluate a checkpoint: ``python tools/test.py CONFIG CHECKPOINT [options]``.

Prints the test metrics; ``--show-dir DIR`` draws the predictions on every
test image; ``--out FILE`` (.pkl or .json) saves the raw predictions.
"""
import argparse
import os

from mmengine.config import Config

from detlab.engine.distributed import distributed_process
from detlab.engine.faults import reported_worker_failures
from detlab.engine.runner import build_runner
from detlab.evaluation.metrics import DumpDetResults
from detlab.utils import CfgOptionsAction, apply_tta, load_config, register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (a local path)')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', type=str,
                        help='file (.pkl or .json) to save the predictions to')
    parser.add_argument(
        '--allow-partial-checkpoint', action='store_true',
        help='evaluate even when the checkpoint does not fit the model (missing, unexpected or '
        'differently shaped weights are left as initialised); by default such a checkpoint is '
        'refused')
    parser.add_argument('--show', action='store_true', help='show predictions in a window')
    parser.add_argument('--show-dir',
                        help='folder (under the work dir\'s timestamp folder) to save '
                        'images with the predictions drawn')
    parser.add_argument('--wait-time', type=float, default=2, help='seconds between --show images')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    parser.add_argument('--tta', action='store_true',
                        help='test-time augmentation: the config\'s tta_model and tta_pipeline')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def build_cfg(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config, args.cfg_options, args.launcher, args.work_dir,
                      check_train_parts=False)
    cfg.load_from = args.checkpoint
    if args.allow_partial_checkpoint:
        cfg.allow_partial_checkpoint = True
    if args.show or args.show_dir:
        hooks = cfg.default_hooks
        if 'visualization' not in hooks:
            raise RuntimeError('--show/--show-dir need default_hooks.visualization '
                               "(dict(type='DetVisualizationHook')) in the config.")
        hooks.visualization.draw = True
        hooks.visualization.show = args.show
        hooks.visualization.wait_time = args.wait_time
        hooks.visualization.test_out_dir = args.show_dir
    if args.tta:
        apply_tta(cfg)
    return cfg


def test(args: argparse.Namespace) -> None:
    """Build the config and the Runner from ``args`` and run the test loop."""
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle', '.json')):
        raise ValueError(f'--out must end with .pkl, .pickle or .json, got {args.out}')
    register_all_modules(init_default_scope=False)
    cfg = build_cfg(args)
    runner = build_runner(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
    with reported_worker_failures():
        runner.test()


def main() -> None:
    with distributed_process():
        test(parse_args())


if __name__ == '__main__':
    main()
