"""Converting detlab predictions and ground truth to the COCO json format.

COCO boxes are ``x, y, w, h`` in pixels; detlab boxes are ``x1, y1, x2, y2``.
COCO names classes by category id, which need not be contiguous (the COCO
ann files skip ids 12, 26, ...); detlab labels are contiguous ``0..K-1``.
"""
import contextlib
import io
import os.path as osp
from typing import Any, Dict, List, Sequence

import numpy as np
from mmengine.fileio import dump
from pycocotools.coco import COCO

from detlab.utils.atomic import atomic_write


def xyxy_to_xywh(bboxes: np.ndarray) -> np.ndarray:
    """Convert boxes from corner form to COCO's corner-and-size form.

    Args:
        bboxes (np.ndarray): (N, 4) x1, y1, x2, y2 in pixels.

    Returns:
        np.ndarray: (N, 4) x, y, w, h in pixels.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([bboxes[:, :2], bboxes[:, 2:] - bboxes[:, :2]], axis=1)


def results_to_coco_json(results: Sequence[dict], cat_ids: Sequence[int]) -> List[dict]:
    """Build the COCO detection results list from per-image predictions.

    Args:
        results (Sequence[dict]): One dict per image with ``img_id`` and
            numpy ``bboxes`` (N, 4) x1, y1, x2, y2 in original-image pixels,
            ``scores`` (N,) and ``labels`` (N,) contiguous class indices.
        cat_ids (Sequence[int]): COCO category id of each contiguous label.

    Returns:
        list[dict]: COCO results, one ``{'image_id', 'bbox' (x, y, w, h),
        'score', 'category_id'}`` per box.

    Raises:
        ValueError: if a label has no category id.
    """
    cat_id_of_label = np.asarray(cat_ids, dtype=np.int64)
    json_results = []
    for result in results:
        labels = np.asarray(result['labels'], dtype=np.int64).reshape(-1)
        if labels.size and (labels.min() < 0 or labels.max() >= len(cat_id_of_label)):
            raise ValueError(
                f'Image {result["img_id"]} has predicted labels in '
                f'[{labels.min()}, {labels.max()}], but only {len(cat_id_of_label)} classes '
                f'map to COCO categories (valid labels: 0..{len(cat_id_of_label) - 1}).')
        boxes = xyxy_to_xywh(result['bboxes']).tolist()
        scores = np.asarray(result['scores'], dtype=np.float64).reshape(-1).tolist()
        categories = cat_id_of_label[labels].tolist()
        json_results.extend(
            dict(image_id=result['img_id'], bbox=box, score=score, category_id=cat)
            for box, score, cat in zip(boxes, scores, categories))
    return json_results


def gt_to_coco_dict(gt_dicts: Sequence[dict], classes: Sequence[str]) -> Dict[str, Any]:
    """Build a COCO ground-truth dataset dict from per-image annotations.

    Category ids are the contiguous labels themselves, so ``cat_ids`` for
    these ground truths is ``range(len(classes))``.

    Args:
        gt_dicts (Sequence[dict]): One dict per image with ``img_id``,
            ``width``, ``height`` and numpy ``bboxes`` (N, 4) x1, y1, x2, y2
            in original-image pixels, ``labels`` (N,) and ``ignore_flags``
            (N,) (1 marks a crowd / ignored box).
        classes (Sequence[str]): Class names, indexed by label.

    Returns:
        dict: A COCO dataset with ``images``, ``annotations`` (ids from 1, as
        pycocotools expects) and ``categories``.
    """
    images = [dict(id=gt['img_id'], width=int(gt['width']), height=int(gt['height']),
                   file_name='') for gt in gt_dicts]
    annotations: List[dict] = []
    for gt in gt_dicts:
        boxes = xyxy_to_xywh(gt['bboxes'])
        areas = (boxes[:, 2] * boxes[:, 3]).tolist()
        labels = np.asarray(gt['labels'], dtype=np.int64).reshape(-1).tolist()
        crowd = np.asarray(gt['ignore_flags'], dtype=np.int64).reshape(-1).tolist()
        first_id = len(annotations) + 1
        annotations.extend(
            dict(id=first_id + i, image_id=gt['img_id'], bbox=box, area=area,
                 category_id=label, iscrowd=is_crowd)
            for i, (box, area, label, is_crowd) in enumerate(
                zip(boxes.tolist(), areas, labels, crowd)))
    categories = [dict(id=i, name=name) for i, name in enumerate(classes)]
    return dict(images=images, annotations=annotations, categories=categories)


def coco_from_dict(dataset: Dict[str, Any]) -> COCO:
    """Index a COCO dataset dict in memory, without pycocotools' prints."""
    coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def load_coco(ann_file: str) -> COCO:
    """Load a COCO ann file without pycocotools' prints.

    Raises:
        FileNotFoundError: naming the path when it does not exist.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO ann_file not found: {ann_file!r}')
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(ann_file)


def load_detections(coco_gt: COCO, json_results: List[dict]) -> COCO:
    """Index detections against ``coco_gt``, as ``COCO.loadRes`` does.

    ``loadRes`` fails on an empty list; no detections is a valid outcome
    (AP 0), so that case gets an empty COCO over the same images.

    Raises:
        ValueError: if a detection names an image that ``coco_gt`` lacks.
    """
    if not json_results:
        return coco_from_dict(dict(images=list(coco_gt.dataset.get('images', [])),
                                   categories=list(coco_gt.dataset.get('categories', [])),
                                   annotations=[]))
    unknown = {r['image_id'] for r in json_results} - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(f'Predictions name image ids that the ground truth lacks: '
                         f'{sorted(unknown)[:10]} (the ground truth has '
                         f'{len(coco_gt.getImgIds())} images).')
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes(json_results)


def dump_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` so that ``path`` is either absent or complete.

    The format follows the suffix (``.json``, ``.pkl``, ``.yaml``), as in
    ``mmengine.fileio.dump``; the file is written beside ``path`` and moved
    into place, so a crash never leaves half a file for a reader.
    """
    atomic_write(path, lambda tmp_path: dump(obj, tmp_path))
