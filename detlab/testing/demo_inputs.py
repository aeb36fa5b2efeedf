"""Random demo batches for tests, as MMDetection's ``mmdet.testing`` builds them.

Everything is drawn from ``numpy.random.RandomState(0)`` in MMDetection's order, so a
call gives MMDetection's images, boxes, labels and masks (the semantic maps use numpy's
global state, as MMDetection's do).
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData, PixelData

from detlab.registry import TASK_UTILS
from detlab.structures import DetDataSample
from detlab.structures.bbox import HorizontalBoxes
from detlab.structures.errors import AssertionValueError
from detlab.structures.mask import BitmapMasks

ImageShape = Tuple[int, int, int]


def _rand_bboxes(rng: np.random.RandomState, num_boxes: int, w: int, h: int) -> np.ndarray:
    """(num_boxes, 4) float64 boxes from random centres and sizes, clipped to the image."""
    cx, cy, bw, bh = rng.rand(num_boxes, 4).T
    x1, x2 = cx * w - w * bw / 2, cx * w + w * bw / 2
    y1, y2 = cy * h - h * bh / 2, cy * h + h * bh / 2
    return np.stack([x1.clip(0, w), y1.clip(0, h), x2.clip(0, w), y2.clip(0, h)], axis=1)


def _rand_masks(rng: np.random.RandomState, bboxes: np.ndarray, w: int, h: int) -> BitmapMasks:
    """One mask per box: random pixels (70 %) inside the box's integer extent."""
    masks = np.zeros((len(bboxes), h, w))
    for mask, box in zip(masks, bboxes.astype(np.int32)):
        x1, y1, x2, y2 = box
        mask[y1:y2, x1:x2] = rng.rand(y2 - y1, x2 - x1) > 0.3
    return BitmapMasks(masks, height=h, width=w)


def _check_batch_list(name: str, values, batch_size: int) -> None:
    if isinstance(values, list) and len(values) != batch_size:
        raise AssertionValueError(f'demo_mm_inputs: {name} has {len(values)} entries for '
                                  f'batch_size={batch_size}')


def demo_mm_inputs(batch_size: int = 2,
                   image_shapes: Union[ImageShape, List[ImageShape]] = (3, 128, 128),
                   num_items: Optional[List[int]] = None,
                   num_classes: int = 10,
                   sem_seg_output_strides: int = 1,
                   with_mask: bool = False,
                   with_semantic: bool = False,
                   use_box_type: bool = False,
                   device: str = 'cpu',
                   texts: Optional[Sequence[str]] = None,
                   custom_entities: bool = False) -> dict:
    """A collated batch of random images and annotations.

    Args:
        batch_size (int): Images in the batch. Defaults to 2.
        image_shapes (tuple | list[tuple]): (C, H, W) of every image, or one per image.
        num_items (list[int], optional): Boxes per image; random in [1, 10) when None.
        num_classes (int): Labels are drawn from [1, num_classes). Defaults to 10.
        sem_seg_output_strides (int): The semantic map is the image size over this.
        with_mask (bool): Add ``gt_instances.masks`` (BitmapMasks).
        with_semantic (bool): Add ``gt_sem_seg``.
        use_box_type (bool): Boxes as HorizontalBoxes instead of tensors.
        device (str): Device of the images and samples.
        texts (list[str], optional): A ``text`` metainfo per image.
        custom_entities (bool): The ``custom_entities`` metainfo with ``texts``.

    Returns:
        dict: ``inputs`` (list of (C, H, W) uint8 tensors) and ``data_samples`` (list of
        DetDataSample with ``gt_instances`` and ``ignored_instances``).
    """
    rng = np.random.RandomState(0)
    if not isinstance(image_shapes, list):
        image_shapes = [image_shapes] * batch_size
    _check_batch_list('image_shapes', image_shapes, batch_size)
    _check_batch_list('num_items', num_items, batch_size)
    if texts is not None and len(texts) != batch_size:
        raise AssertionValueError(f'demo_mm_inputs: {len(texts)} texts for '
                                  f'batch_size={batch_size}')

    def as_boxes(bboxes: np.ndarray):
        if use_box_type:
            return HorizontalBoxes(bboxes, dtype=torch.float32)
        return torch.FloatTensor(bboxes)

    packed = []
    for idx, image_shape in enumerate(image_shapes):
        _, h, w = image_shape
        image = rng.randint(0, 255, size=image_shape, dtype=np.uint8)
        metainfo = dict(img_id=idx, img_shape=tuple(image_shape[1:]),
                        ori_shape=tuple(image_shape[1:]), filename='<demo>.png',
                        scale_factor=np.array([1.1, 1.2]), flip=False, flip_direction=None,
                        border=[1, 1, 1, 1])
        if texts:
            metainfo.update(text=texts[idx], custom_entities=custom_entities)
        data_sample = DetDataSample(metainfo=metainfo)
        num_boxes = rng.randint(1, 10) if num_items is None else num_items[idx]
        bboxes = _rand_bboxes(rng, num_boxes, w, h)
        gt_instances = InstanceData(bboxes=as_boxes(bboxes),
                                    labels=torch.LongTensor(rng.randint(1, num_classes,
                                                                        size=num_boxes)))
        if with_mask:
            gt_instances.masks = _rand_masks(rng, bboxes, w, h)
        data_sample.gt_instances = gt_instances
        data_sample.ignored_instances = InstanceData(
            bboxes=as_boxes(_rand_bboxes(rng, num_boxes, w, h)))
        if with_semantic:
            sem_seg = np.random.randint(
                0, num_classes,
                (1, h // sem_seg_output_strides, w // sem_seg_output_strides), dtype=np.uint8)
            data_sample.gt_sem_seg = PixelData(sem_seg=torch.from_numpy(sem_seg))
        packed.append(dict(inputs=torch.from_numpy(image).to(device),
                           data_samples=data_sample.to(device)))
    return pseudo_collate(packed)


def demo_mm_proposals(image_shapes: Sequence[Sequence[int]], num_proposals: int,
                      device: str = 'cpu') -> List[InstanceData]:
    """Random proposals per image: ``bboxes`` (num_proposals, 4), ``scores``, ``labels`` 0.

    Args:
        image_shapes (list[tuple]): (C, H, W) of each image. As in MMDetection, the
            boxes are drawn with w = H and h = W.
        num_proposals (int): Proposals per image.
        device (str): Device of the results.
    """
    rng = np.random.RandomState(0)
    results = []
    for image_shape in image_shapes:
        w, h = image_shape[1:]
        proposals = InstanceData(
            bboxes=torch.from_numpy(_rand_bboxes(rng, num_proposals, w, h)).float(),
            scores=torch.from_numpy(rng.rand(num_proposals)).float(),
            labels=torch.zeros(num_proposals).long())
        results.append(proposals.to(device))
    return results


def demo_mm_sampling_results(proposals_list: List[InstanceData],
                             batch_gt_instances: List[InstanceData],
                             batch_gt_instances_ignore: Optional[List[InstanceData]] = None,
                             assigner_cfg: Optional[dict] = None,
                             sampler_cfg: Optional[dict] = None,
                             feats=None) -> list:
    """Assign and sample each image's proposals, for a bbox head's ``get_targets``.

    Each proposal set's ``bboxes`` are renamed to ``priors`` in place, as MMDetection's
    helper does. The defaults are Faster R-CNN's R-CNN assigner and sampler.
    """
    if len(proposals_list) != len(batch_gt_instances):
        raise AssertionValueError(f'demo_mm_sampling_results: {len(proposals_list)} proposal '
                                  f'sets for {len(batch_gt_instances)} images')
    if batch_gt_instances_ignore is None:
        batch_gt_instances_ignore = [None] * len(batch_gt_instances)
    elif len(batch_gt_instances_ignore) != len(batch_gt_instances):
        raise AssertionValueError('demo_mm_sampling_results: one ignore set per image needed')
    assigner = TASK_UTILS.build(assigner_cfg or dict(
        type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
        ignore_iof_thr=-1))
    sampler = TASK_UTILS.build(sampler_cfg or dict(
        type='RandomSampler', num=512, pos_fraction=0.25, neg_pos_ub=-1,
        add_gt_as_proposals=True))
    results = []
    for i, (proposals, gt_instances, ignored) in enumerate(
            zip(proposals_list, batch_gt_instances, batch_gt_instances_ignore)):
        image_feats = None if feats is None else [level[i][None] for level in feats]
        proposals.priors = proposals.pop('bboxes')
        assign_result = assigner.assign(proposals, gt_instances, ignored)
        results.append(sampler.sample(assign_result, proposals, gt_instances,
                                      feats=image_feats))
    return results
