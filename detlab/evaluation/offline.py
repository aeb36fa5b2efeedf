"""Glue for the offline tools: pair a result file's records with the dataset's ground truth."""
from typing import Dict, List, Sequence

import numpy as np


def _instances_by_image(dataset) -> Dict[object, List[dict]]:
    """``img_id`` -> the dataset's raw ``instances`` (original-image pixels)."""
    found = {}
    for index in range(len(dataset)):
        info = dataset.get_data_info(index)
        found[info['img_id']] = info.get('instances', [])
    return found


def attach_instances(records: Sequence[dict], dataset, source: str) -> List[dict]:
    """Give every result record its image's raw ``instances`` from ``dataset``.

    Metrics without an ``ann_file`` read the ground truth from them, as
    MMDetection's CocoMetric does.

    Raises:
        KeyError: naming the first image of the results that the dataset lacks.
    """
    by_image = _instances_by_image(dataset)
    missing = [r.get('img_id') for r in records if r.get('img_id') not in by_image]
    if missing:
        raise KeyError(f'{source}: image ids {missing[:5]} of the results are not in the '
                       f'test dataset ({len(by_image)} images); were the results made with '
                       'another config?')
    return [dict(record, instances=by_image[record['img_id']]) for record in records]


def gt_and_preds(records: Sequence[dict]) -> tuple:
    """Numpy ground truth and predictions of records that carry ``instances``.

    Returns:
        tuple: ``gts`` (per image ``bboxes`` (G, 4), ``labels`` (G,),
        ``ignore_flags`` (G,)) and ``preds`` (``bboxes`` (D, 4), ``scores``
        (D,), ``labels`` (D,)).
    """
    gts, preds = [], []
    for record in records:
        instances = record['instances']
        gts.append(dict(
            bboxes=np.array([ins['bbox'] for ins in instances], np.float32).reshape(-1, 4),
            labels=np.array([ins['bbox_label'] for ins in instances], np.int64),
            ignore_flags=np.array([ins.get('ignore_flag', 0) for ins in instances], bool)))
        pred = record['pred_instances']
        preds.append({key: np.asarray(pred[key]) for key in ('bboxes', 'scores', 'labels')})
    return gts, preds
