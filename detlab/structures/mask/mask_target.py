"""Mask R-CNN's training targets: each positive RoI's gt mask, cropped and resized."""
from typing import Sequence, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair

from .base import BaseInstanceMasks


def mask_target(pos_proposals_list: Sequence[Tensor], pos_assigned_gt_inds_list: Sequence[Tensor],
                gt_masks_list: Sequence[BaseInstanceMasks], cfg: dict) -> Union[Tensor, list]:
    """Mask targets of the positive RoIs of a batch, images concatenated in order.

    Args:
        pos_proposals_list (list[Tensor]): (P_i, 4) positive RoIs of each image.
        pos_assigned_gt_inds_list (list[Tensor]): (P_i,) index of each RoI's gt.
        gt_masks_list (list[BitmapMasks | PolygonMasks]): gt masks of each image.
        cfg (dict): R-CNN ``train_cfg``: ``mask_size`` (int or (h, w)) and
            optionally ``soft_mask_target`` (keep roi_align's fractions).

    Returns:
        Tensor: (sum P_i, h, w) float targets (an empty list for no images, as
        MMDetection).
    """
    targets = [mask_target_single(proposals, gt_inds, gt_masks, cfg)
               for proposals, gt_inds, gt_masks in zip(pos_proposals_list,
                                                       pos_assigned_gt_inds_list, gt_masks_list)]
    return torch.cat(targets) if targets else targets


def mask_target_single(pos_proposals: Tensor, pos_assigned_gt_inds: Tensor,
                       gt_masks: BaseInstanceMasks, cfg: dict) -> Tensor:
    """One image's mask targets: each RoI, clipped to the image, cuts its gt
    mask out and resizes it to ``mask_size`` (bilinear ``roi_align`` with
    ``aligned=True`` for bitmaps, rasterised polygons for polygons), then
    thresholds it at 0.5 unless ``soft_mask_target``.

    Args:
        pos_proposals (Tensor): (P, 4) RoIs in the pixels of ``gt_masks``.
        pos_assigned_gt_inds (Tensor): (P,) gt index of each RoI.
        gt_masks (BitmapMasks | PolygonMasks): The image's gt masks.
        cfg (dict): ``mask_size`` and optional ``soft_mask_target``.

    Returns:
        Tensor: (P, h, w) float32 on the proposals' device.
    """
    if 'mask_size' not in cfg:
        raise KeyError('train_cfg.rcnn needs mask_size (e.g. 28) for a mask head')
    mask_size = _pair(cfg['mask_size'])
    device = pos_proposals.device
    if pos_proposals.size(0) == 0:
        return pos_proposals.new_zeros((0, ) + mask_size)
    # The masks live on the host (numpy), so the RoIs go there to be cut out.
    boxes = pos_proposals.detach().cpu().clone()
    boxes[:, 0::2] = boxes[:, 0::2].clamp(0, gt_masks.width)
    boxes[:, 1::2] = boxes[:, 1::2].clamp(0, gt_masks.height)
    targets = gt_masks.crop_and_resize(boxes.numpy(), mask_size,
                                       inds=pos_assigned_gt_inds.cpu().numpy(),
                                       binarize=not cfg.get('soft_mask_target', False))
    return torch.from_numpy(targets.to_ndarray()).float().to(device)
