"""Inputs of batched target assignment: padded gts and per-image anchor flags.

A dense head assigns every image of a batch at once (see
:meth:`MaxIoUAssigner.assign_batch`): gts are padded to the batch's largest
count and each image marks the anchors it takes part with. All of it is
tensor work on the anchors' device; the only host data are the image shapes
from the metainfo, sent in one small copy.
"""
import math
from typing import List, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

#: Label of padded gt slots (never read: padded slots cannot match).
PAD_LABEL = -1


def pad_gt_instances(batch_gt_instances: Sequence[InstanceData],
                     device: torch.device) -> Tuple[Tensor, Tensor, Tensor]:
    """Stack each image's gts into one padded batch.

    Args:
        batch_gt_instances (list[InstanceData]): ``bboxes`` (K_i, 4) and
            ``labels`` (K_i,) per image.
        device (torch.device): Where the result lives.

    Returns:
        tuple: ``bboxes`` (B, K, 4) float, ``labels`` (B, K) long (``PAD_LABEL``
        on padding) and ``valid`` (B, K) bool, K = max K_i, at least 1 (a
        padded slot when no image has gts, so reductions over K are defined).
    """
    bboxes = [gt.bboxes.to(device=device, dtype=torch.float32).reshape(-1, 4)
              for gt in batch_gt_instances]
    labels = [gt.labels.to(device=device, dtype=torch.long).reshape(-1)
              for gt in batch_gt_instances]
    counts = torch.tensor([len(one) for one in labels], device=device)
    if all(len(one) == 0 for one in labels):
        bboxes[0] = bboxes[0].new_zeros((1, 4))
        labels[0] = labels[0].new_full((1, ), PAD_LABEL)
    padded_bboxes = torch.nn.utils.rnn.pad_sequence(bboxes, batch_first=True)
    padded_labels = torch.nn.utils.rnn.pad_sequence(labels, batch_first=True,
                                                    padding_value=PAD_LABEL)
    valid = torch.arange(padded_labels.shape[1], device=device)[None, :] < counts[:, None]
    return padded_bboxes, padded_labels, valid


def batch_valid_flags(strides: Sequence[Tuple[int, int]], num_base_priors: Sequence[int],
                      featmap_sizes: Sequence[Tuple[int, int]], pad_shapes: List[Tuple[int, int]],
                      device: torch.device) -> Tensor:
    """For each image, the anchors on feature cells that cover its padded area.

    The same flags as ``AnchorGenerator.valid_flags`` image by image: a cell
    (y, x) of a level with stride (s_w, s_h) is valid when
    ``y < ceil(pad_h / s_h)`` and ``x < ceil(pad_w / s_w)``.

    Args:
        strides (list[tuple[int, int]]): (w, h) stride of each level.
        num_base_priors (list[int]): Anchors per cell of each level.
        featmap_sizes (list): (h, w) of each level.
        pad_shapes (list[tuple[int, int]]): (h, w) of each image after padding.
        device (torch.device): Device of the flags.

    Returns:
        Tensor: (B, N) bool, anchors in ``grid_priors`` order.
    """
    limits = [[(min(math.ceil(pad_h / stride_h), feat_h), min(math.ceil(pad_w / stride_w), feat_w))
               for (stride_w, stride_h), (feat_h, feat_w) in zip(strides, featmap_sizes)]
              for pad_h, pad_w in pad_shapes]
    limits = torch.tensor(limits, device=device).reshape(len(pad_shapes), len(strides), 2)
    flags = []
    for level, ((feat_h, feat_w), num_anchors) in enumerate(zip(featmap_sizes, num_base_priors)):
        rows = torch.arange(feat_h, device=device)[None, :, None] < limits[:, level, 0, None, None]
        cols = torch.arange(feat_w, device=device)[None, None, :] < limits[:, level, 1, None, None]
        cells = (rows & cols).reshape(len(pad_shapes), -1, 1)  # (B, h * w, 1)
        flags.append(cells.expand(-1, -1, num_anchors).reshape(len(pad_shapes), -1))
    return torch.cat(flags, dim=1)


def inside_image(anchors: Tensor, img_shapes: List[Tuple[int, int]],
                 allowed_border: float) -> Tensor:
    """(B, N) bool: anchors within ``allowed_border`` pixels of each image."""
    shapes = anchors.new_tensor(img_shapes)  # (B, 2) h, w
    img_h, img_w = shapes[:, 0, None], shapes[:, 1, None]
    return ((anchors[None, :, 0] >= -allowed_border) & (anchors[None, :, 1] >= -allowed_border)
            & (anchors[None, :, 2] < img_w + allowed_border)
            & (anchors[None, :, 3] < img_h + allowed_border))
