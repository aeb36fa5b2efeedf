"""Evaluate saved predictions: ``python tools/analysis_tools/eval_metric.py CONFIG RESULTS``.

RESULTS is the file of ``tools/test.py --out`` (detlab's or MMDetection's
pickle, or detlab's json). The config's ``test_evaluator`` scores it against
the ``test_dataloader`` dataset; ``--out-dir DIR`` also writes each class's
precision-recall curve as a PNG and a table of precision, recall and F1 at
the score that maximises F1.
"""
import argparse
import os.path as osp

from mmengine.evaluator import Evaluator
from mmengine.logging import print_log

from detlab.evaluation.functional import best_f1, format_table, pr_curves
from detlab.evaluation.metrics import load_det_results
from detlab.evaluation.offline import attach_instances, gt_and_preds
from detlab.evaluation.plots import plot_pr_curves
from detlab.registry import DATASETS
from detlab.utils import CfgOptionsAction, load_config, register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Evaluate the predictions saved by '
                                     'tools/test.py --out')
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('results', help='.pkl/.pickle/.json file of tools/test.py --out')
    parser.add_argument('--out-dir', help='write per-class PR curves (PNG) and the F1 table here')
    parser.add_argument('--iou-thr', type=float, default=0.5,
                        help='IoU of a true positive for the PR curves and F1 (default 0.5)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def f1_table(curves, class_names) -> str:
    """Per class: gts, precision, recall and F1 at the best-F1 score threshold."""
    rows = []
    for name, curve in zip(class_names, curves):
        point = best_f1(curve)
        rows.append([name, curve.num_gts, f'{point.score_thr:.3f}', f'{point.precision:.3f}',
                     f'{point.recall:.3f}', f'{point.f1:.3f}'])
    return format_table(['class', 'gts', 'score_thr', 'precision', 'recall', 'f1'], rows)


def main() -> None:
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = load_config(args.config, args.cfg_options, check_train_parts=False)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    records = attach_instances(load_det_results(args.results), dataset, args.results)
    evaluator = Evaluator(cfg.test_evaluator)
    evaluator.dataset_meta = dataset.metainfo
    metrics = evaluator.offline_evaluate(records, chunk_size=64)
    print_log(f'Metrics of {args.results}: {metrics}', logger='current')
    print(metrics)
    if args.out_dir:
        class_names = list(dataset.metainfo['classes'])
        gts, preds = gt_and_preds(records)
        curves = pr_curves(gts, preds, len(class_names), iou_thr=args.iou_thr)
        table = f1_table(curves, class_names)
        print(table)
        written = plot_pr_curves(curves, class_names, args.out_dir)
        print(f'{len(written)} PR curves written to {osp.abspath(args.out_dir)}')


if __name__ == '__main__':
    main()
