"""Reading predictions and ground truth out of the samples a metric receives."""
from typing import Dict

import numpy as np
import torch

from detlab.structures.det_data_sample import GT_IN_ORI_IMAGE


def to_numpy(value) -> np.ndarray:
    """A tensor (or box object with ``.tensor``, or array-like) as a CPU numpy array."""
    value = getattr(value, 'tensor', value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def gt_from_sample(sample: dict, metric_name: str) -> Dict[str, np.ndarray]:
    """Ground-truth boxes of one sample in original-image pixels.

    Raw ``instances`` (as the dataset gives them) are used when present;
    otherwise ``gt_instances`` and ``ignored_instances``, divided by the
    sample's ``scale_factor`` unless ``LoadAnnotations`` ran after ``Resize``
    (MMDetection's test pipelines), which leaves them in original pixels.

    Args:
        sample (dict): A ``DetDataSample.to_dict()``.
        metric_name (str): Named in the error when the sample has no gt.

    Returns:
        dict: ``bboxes`` (N, 4) float64 x1, y1, x2, y2, ``labels`` (N,)
        int64, ``ignore_flags`` (N,) int64 (1 for ignored / crowd boxes).
    """
    if 'instances' in sample:
        instances = sample['instances']
        return dict(
            bboxes=np.asarray([ins['bbox'] for ins in instances],
                              dtype=np.float64).reshape(-1, 4),
            labels=np.asarray([ins['bbox_label'] for ins in instances], dtype=np.int64),
            ignore_flags=np.asarray([ins.get('ignore_flag', 0) for ins in instances],
                                    dtype=np.int64))
    if 'gt_instances' not in sample:
        raise KeyError(f'{metric_name} needs ground truth in each sample ("instances" or '
                       f'"gt_instances"); image {sample.get("img_id")} has neither (keys: '
                       f'{sorted(sample)}).')
    scale_w, scale_h = sample.get('scale_factor', (1.0, 1.0))
    if sample['gt_instances'].get(GT_IN_ORI_IMAGE, False):
        scale_w, scale_h = 1.0, 1.0  # loaded after Resize: never scaled
    to_original = np.array([scale_w, scale_h, scale_w, scale_h], dtype=np.float64)
    parts = [(sample['gt_instances'], 0)]
    if 'ignored_instances' in sample and 'bboxes' in sample['ignored_instances']:
        parts.append((sample['ignored_instances'], 1))
    boxes = [to_numpy(ins['bboxes']).reshape(-1, 4) / to_original for ins, _ in parts]
    labels = [to_numpy(ins['labels']).reshape(-1) for ins, _ in parts]
    flags = [np.full(len(lab), flag, dtype=np.int64) for lab, (_, flag) in zip(labels, parts)]
    return dict(bboxes=np.concatenate(boxes), labels=np.concatenate(labels).astype(np.int64),
                ignore_flags=np.concatenate(flags))
