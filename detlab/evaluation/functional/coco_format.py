"""Converting detlab predictions and ground truth to the COCO json format.

COCO boxes are ``x, y, w, h`` in pixels; detlab boxes are ``x1, y1, x2, y2``.
COCO names classes by category id, which need not be contiguous (the COCO
ann files skip ids 12, 26, ...); detlab labels are contiguous ``0..K-1``.
"""
import contextlib
import io
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

import numpy as np
from mmengine.fileio import dump
from pycocotools.coco import COCO

from detlab.utils.atomic import atomic_write
from detlab.utils.coco_json import check_coco_ids, read_json


def xyxy_to_xywh(bboxes: np.ndarray) -> np.ndarray:
    """Convert boxes from corner form to COCO's corner-and-size form.

    Args:
        bboxes (np.ndarray): (N, 4) x1, y1, x2, y2 in pixels.

    Returns:
        np.ndarray: (N, 4) x, y, w, h in pixels.
    """
    bboxes = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([bboxes[:, :2], bboxes[:, 2:] - bboxes[:, :2]], axis=1)


def detections_from_results(results: Sequence[dict],
                            cat_ids: Sequence[int]) -> 'DetectionArrays':
    """Gather per-image predictions into COCO-form detection arrays.

    Args:
        results (Sequence[dict]): One dict per image with ``img_id`` and
            numpy ``bboxes`` (N, 4) x1, y1, x2, y2 in original-image pixels,
            ``scores`` (N,) and ``labels`` (N,) contiguous class indices.
        cat_ids (Sequence[int]): COCO category id of each contiguous label.

    Returns:
        DetectionArrays: the boxes as x, y, w, h, in the order given.

    Raises:
        ValueError: if a label has no category id.
    """
    cat_id_of_label = np.asarray(cat_ids, dtype=np.int64)
    labels = [np.asarray(r['labels'], dtype=np.int64).reshape(-1) for r in results]
    for result, image_labels in zip(results, labels):
        if image_labels.size and (image_labels.min() < 0 or
                                  image_labels.max() >= len(cat_id_of_label)):
            raise ValueError(
                f'Image {result["img_id"]} has predicted labels in '
                f'[{image_labels.min()}, {image_labels.max()}], but only '
                f'{len(cat_id_of_label)} classes map to COCO categories (valid labels: '
                f'0..{len(cat_id_of_label) - 1}).')
    counts = [len(image_labels) for image_labels in labels]
    all_labels = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    return DetectionArrays(
        image_ids=np.repeat(np.array([r['img_id'] for r in results], dtype=np.int64), counts),
        category_ids=cat_id_of_label[all_labels],
        bboxes=xyxy_to_xywh(np.concatenate([np.asarray(r['bboxes']).reshape(-1, 4)
                                            for r in results]) if results else np.zeros((0, 4))),
        scores=np.concatenate([np.asarray(r['scores'], dtype=np.float64).reshape(-1)
                               for r in results]) if results else np.zeros(0))


def results_to_coco_json(results: Sequence[dict], cat_ids: Sequence[int]) -> List[dict]:
    """The COCO results list (``image_id``, ``bbox`` x, y, w, h, ``score``,
    ``category_id`` per box) of per-image predictions; see
    :func:`detections_from_results`."""
    return detections_from_results(results, cat_ids).to_coco_json()


def segm_results_to_coco_json(results: Sequence[dict], cat_ids: Sequence[int]) -> List[dict]:
    """The COCO mask results list of per-image predictions, as MMDetection writes it.

    Args:
        results (Sequence[dict]): As :func:`detections_from_results`, plus
            ``masks`` (one COCO RLE dict per box, ``counts`` bytes or str)
            and optionally ``mask_scores`` (N,) (used instead of ``scores``).
        cat_ids (Sequence[int]): COCO category id of each contiguous label.

    Returns:
        list[dict]: ``image_id``, ``bbox`` (x, y, w, h), ``score``,
        ``category_id`` and ``segmentation`` (RLE with str ``counts``) per mask.

    Raises:
        ValueError: if an image has a different number of masks than boxes.
    """
    for result in results:
        if len(result['masks']) != len(np.asarray(result['labels']).reshape(-1)):
            raise ValueError(f'Image {result["img_id"]} has {len(result["masks"])} masks for '
                             f'{len(np.asarray(result["labels"]).reshape(-1))} detections.')
    json_results = detections_from_results(results, cat_ids).to_coco_json()
    masks = [mask for result in results for mask in result['masks']]
    scores = [float(score) for result in results
              for score in np.asarray(result.get('mask_scores', result['scores'])).reshape(-1)]
    for record, mask, score in zip(json_results, masks, scores):
        record['score'] = score
        record['segmentation'] = rle_with_str_counts(mask)
    return json_results


def rle_with_str_counts(rle: dict) -> dict:
    """A copy of a COCO RLE whose compressed ``counts`` is a str (json-ready)."""
    counts = rle['counts']
    return dict(rle, counts=counts.decode() if isinstance(counts, bytes) else counts)


@dataclass
class DetectionArrays:
    """Detections in COCO's terms, one row per box, in the results-file order.

    Attributes:
        image_ids (np.ndarray): (N,) int64 COCO image id.
        category_ids (np.ndarray): (N,) int64 COCO category id.
        bboxes (np.ndarray): (N, 4) float64 x, y, w, h in pixels.
        scores (np.ndarray): (N,) float64.
    """
    image_ids: np.ndarray
    category_ids: np.ndarray
    bboxes: np.ndarray
    scores: np.ndarray

    def to_coco_json(self) -> List[dict]:
        """The same detections as a COCO results list (for pycocotools)."""
        return [dict(image_id=img, bbox=box, score=score, category_id=cat)
                for img, box, score, cat in zip(self.image_ids.tolist(), self.bboxes.tolist(),
                                                self.scores.tolist(),
                                                self.category_ids.tolist())]

    @classmethod
    def from_coco_json(cls, json_results: Sequence[dict]) -> 'DetectionArrays':
        """Parse a COCO results list (``image_id``, ``bbox``, ``score``, ``category_id``)."""
        return cls(image_ids=np.array([r['image_id'] for r in json_results], dtype=np.int64),
                   category_ids=np.array([r['category_id'] for r in json_results],
                                         dtype=np.int64),
                   bboxes=np.array([r['bbox'] for r in json_results],
                                   dtype=np.float64).reshape(-1, 4),
                   scores=np.array([r['score'] for r in json_results], dtype=np.float64))


def gt_to_coco_dict(gt_dicts: Sequence[dict], classes: Sequence[str]) -> Dict[str, Any]:
    """Build a COCO ground-truth dataset dict from per-image annotations.

    Category ids are the contiguous labels themselves, so ``cat_ids`` for
    these ground truths is ``range(len(classes))``.

    Args:
        gt_dicts (Sequence[dict]): One dict per image with ``img_id``,
            ``width``, ``height`` and numpy ``bboxes`` (N, 4) x1, y1, x2, y2
            in original-image pixels, ``labels`` (N,) and ``ignore_flags``
            (N,) (1 marks a crowd / ignored box); optionally ``masks`` (one
            COCO ``segmentation`` per box: polygons or RLE, in original-image
            pixels), written as each annotation's ``segmentation``.
        classes (Sequence[str]): Class names, indexed by label.

    Returns:
        dict: A COCO dataset with ``images``, ``annotations`` (ids from 1, as
        pycocotools expects) and ``categories``. ``area`` is the box's
        ``w * h`` (as MMDetection's converter), also when masks are given.
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
        new = [dict(id=first_id + i, image_id=gt['img_id'], bbox=box, area=area,
                    category_id=label, iscrowd=is_crowd)
               for i, (box, area, label, is_crowd) in enumerate(
                   zip(boxes.tolist(), areas, labels, crowd))]
        if gt.get('masks') is not None:
            for ann, segmentation in zip(new, gt['masks']):
                ann['segmentation'] = (rle_with_str_counts(segmentation)
                                       if isinstance(segmentation, dict) else segmentation)
        annotations.extend(new)
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
        ValueError: The file is not JSON, or an entry's ids are not 64-bit
            integers; the message names the file and the entry.
    """
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'COCO ann_file not found: {ann_file!r}')
    content = read_json(ann_file, 'COCO ann_file')
    check_coco_ids(content, ann_file)
    return coco_from_dict(content)


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
    check_image_ids(coco_gt, [r['image_id'] for r in json_results])
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes(json_results)


def check_image_ids(coco_gt: COCO, image_ids: Sequence[int]) -> None:
    """Raise a ValueError naming detections' image ids that ``coco_gt`` lacks."""
    unknown = set(np.unique(np.asarray(image_ids)).tolist()) - set(coco_gt.getImgIds())
    if unknown:
        raise ValueError(f'Predictions name image ids that the ground truth lacks: '
                         f'{sorted(unknown)[:10]} (the ground truth has '
                         f'{len(coco_gt.getImgIds())} images).')


def dump_atomic(obj: Any, path: str) -> None:
    """Write ``obj`` so that ``path`` is either absent or complete.

    The format follows the suffix (``.json``, ``.pkl``, ``.yaml``), as in
    ``mmengine.fileio.dump``; the file is written beside ``path`` and moved
    into place, so a crash never leaves half a file for a reader.
    """
    atomic_write(path, lambda tmp_path: dump(obj, tmp_path))
