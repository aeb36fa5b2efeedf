"""Reading predictions and ground truth out of the samples a metric receives."""
from typing import Dict, List

import numpy as np
import torch

from detlab.structures.det_data_sample import GT_IN_ORI_IMAGE
from detlab.structures.mask import BaseInstanceMasks, PolygonMasks, encode_mask_results


def to_numpy(value) -> np.ndarray:
    """A tensor (or box object with ``.tensor``, or array-like) as a CPU numpy array."""
    value = getattr(value, 'tensor', value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def gt_from_sample(sample: dict, metric_name: str, with_masks: bool = False) -> Dict[str, object]:
    """Ground-truth boxes (and masks) of one sample in original-image pixels.

    Raw ``instances`` (as the dataset gives them) are used when present;
    otherwise ``gt_instances`` and ``ignored_instances``, divided by the
    sample's ``scale_factor`` unless ``LoadAnnotations`` ran after ``Resize``
    (MMDetection's test pipelines), which leaves them in original pixels.

    Args:
        sample (dict): A ``DetDataSample.to_dict()``.
        metric_name (str): Named in the error when the sample has no gt.
        with_masks (bool): Also return ``masks``: one COCO segmentation per
            box (the raw instances' polygons or RLE; ``gt_instances.masks``
            resized to the original image when they were resized, as
            polygons or RLE).

    Returns:
        dict: ``bboxes`` (N, 4) float64 x1, y1, x2, y2, ``labels`` (N,)
        int64, ``ignore_flags`` (N,) int64 (1 for ignored / crowd boxes);
        ``masks`` (list of N) with ``with_masks``.
    """
    if 'instances' in sample:
        instances = sample['instances']
        gt = dict(
            bboxes=np.asarray([ins['bbox'] for ins in instances],
                              dtype=np.float64).reshape(-1, 4),
            labels=np.asarray([ins['bbox_label'] for ins in instances], dtype=np.int64),
            ignore_flags=np.asarray([ins.get('ignore_flag', 0) for ins in instances],
                                    dtype=np.int64))
        if with_masks:
            missing = [i for i, ins in enumerate(instances) if ins.get('mask') is None]
            if missing:
                raise KeyError(f'{metric_name} with metric segm needs a mask on every gt '
                               f'instance; image {sample.get("img_id")} has none on '
                               f'instances {missing[:10]}.')
            gt['masks'] = [ins['mask'] for ins in instances]
        return gt
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
    gt = dict(bboxes=np.concatenate(boxes), labels=np.concatenate(labels).astype(np.int64),
              ignore_flags=np.concatenate(flags))
    if with_masks:
        ori_shape = tuple(sample['ori_shape'][:2])
        gt['masks'] = [segm for ins, _ in parts
                       for segm in coco_segmentations(ins, ori_shape, metric_name, sample)]
    return gt


def coco_segmentations(instances: dict, ori_shape: tuple, metric_name: str,
                       sample: dict) -> List[object]:
    """COCO segmentations of ``instances['masks']`` in an ``ori_shape`` image:
    flat polygons for ``PolygonMasks``, RLE for bitmaps."""
    masks = instances.get('masks')
    if not isinstance(masks, BaseInstanceMasks):
        raise KeyError(f'{metric_name} with metric segm needs gt masks; image '
                       f'{sample.get("img_id")} has none (load them with '
                       'LoadAnnotations(with_mask=True)).')
    if (masks.height, masks.width) != ori_shape:
        masks = masks.resize(ori_shape)
    if isinstance(masks, PolygonMasks):
        return [[np.asarray(poly, dtype=np.float64).tolist() for poly in obj]
                for obj in masks.masks]
    return encode_mask_results(masks.to_ndarray())
