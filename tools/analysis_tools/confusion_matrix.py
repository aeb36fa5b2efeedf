"""Draw a detection confusion matrix:
``python tools/analysis_tools/confusion_matrix.py CONFIG RESULTS SAVE_DIR``.

RESULTS is the file of ``tools/test.py --out``; the ground truth comes from
the config's ``test_dataloader`` dataset. Writes ``SAVE_DIR/confusion_matrix.png``
(rows: gt class, columns: predicted class, each row in percent; the last row
and column are background) and the raw counts as ``confusion_matrix.json``.
"""
import argparse
import os.path as osp

import numpy as np
import torch
from torchvision.ops import batched_nms

from detlab.evaluation.functional import confusion_matrix
from detlab.evaluation.functional.coco_format import dump_atomic
from detlab.evaluation.metrics import load_det_results
from detlab.evaluation.offline import attach_instances, gt_and_preds
from detlab.evaluation.plots import plot_confusion_matrix
from detlab.registry import DATASETS
from detlab.utils import CfgOptionsAction, load_config, register_all_modules


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Confusion matrix of saved predictions')
    parser.add_argument('config', help='the config the predictions were made with')
    parser.add_argument('prediction_path', help='file of tools/test.py --out')
    parser.add_argument('save_dir', help='folder for confusion_matrix.png')
    parser.add_argument('--color-theme', default='plasma', help='matplotlib colour map')
    parser.add_argument('--score-thr', type=float, default=0.3,
                        help='drop predictions scoring below this (default 0.3)')
    parser.add_argument('--tp-iou-thr', type=float, default=0.5,
                        help='IoU at which a prediction hits a gt box (default 0.5)')
    parser.add_argument('--nms-iou-thr', type=float, default=None,
                        help='apply per-class NMS again at this IoU (default: no)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def renms(pred: dict, iou_thr: float) -> dict:
    """Per-class NMS of one image's predictions at ``iou_thr``."""
    keep = batched_nms(torch.as_tensor(pred['bboxes'], dtype=torch.float32),
                       torch.as_tensor(pred['scores'], dtype=torch.float32),
                       torch.as_tensor(pred['labels']), iou_thr).numpy()
    return {key: np.asarray(value)[keep] for key, value in pred.items()}


def main() -> None:
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = load_config(args.config, args.cfg_options, check_train_parts=False)
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    records = attach_instances(load_det_results(args.prediction_path), dataset,
                               args.prediction_path)
    gts, preds = gt_and_preds(records)
    if args.nms_iou_thr is not None:
        preds = [renms(pred, args.nms_iou_thr) for pred in preds]
    classes = list(dataset.metainfo['classes'])
    matrix = confusion_matrix(gts, preds, len(classes), score_thr=args.score_thr,
                              tp_iou_thr=args.tp_iou_thr)
    png = plot_confusion_matrix(matrix, classes + ['background'],
                                osp.join(args.save_dir, 'confusion_matrix.png'),
                                color_theme=args.color_theme)
    dump_atomic(dict(labels=classes + ['background'], counts=matrix.tolist()),
                osp.join(args.save_dir, 'confusion_matrix.json'))
    print(f'Confusion matrix written to {png}')


if __name__ == '__main__':
    main()
