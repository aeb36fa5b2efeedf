"""Helpers shared by detection heads (MMDetection's ``models/utils`` names where
they exist): moving outputs between per-level, per-image and flat layouts,
score filtering, padded gts for batched assignment, conv towers, and turning
boxes back into the original image's pixels.
"""
import math
from functools import partial
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmcv.cnn import ConvModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from detlab.structures import SampleList, scale_boxes

#: Label of padded gt slots (never read: padded slots are marked invalid).
PAD_LABEL = -1


# ---- per-level, per-image and flat layouts -----------------------------
def multi_apply(func: Callable, *args, **kwargs) -> tuple:
    """Call ``func`` on each tuple of ``args`` items (keyword arguments shared)
    and regroup the results: a tuple with one list per output of ``func``."""
    pfunc = partial(func, **kwargs) if kwargs else func
    return tuple(map(list, zip(*map(pfunc, *args))))


def images_to_levels(target: Union[Sequence[Tensor], Tensor],
                     num_levels: Sequence[int]) -> List[Tensor]:
    """Per-image targets of all levels -> per-level targets of all images.

    Args:
        target (list[Tensor] | Tensor): (N, ...) per image, or (B, N, ...)
            already stacked, N = sum of ``num_levels``.
        num_levels (list[int]): Priors of each level.

    Returns:
        list[Tensor]: (B, N_l, ...) per level (views into the stacked target).
    """
    stacked = target if isinstance(target, Tensor) else torch.stack(list(target), 0)
    return list(stacked.split(list(num_levels), dim=1))


def levels_to_anchor_rows(level_outputs: Sequence[Tensor], channels_per_prior: int) -> Tensor:
    """(B, A*K, H, W) per level -> (B, sum of H*W*A, K), rows in the priors' order."""
    batch = level_outputs[0].shape[0]
    return torch.cat([out.permute(0, 2, 3, 1).reshape(batch, -1, channels_per_prior)
                      for out in level_outputs], dim=1)


def select_single_mlvl(mlvl_tensors: Sequence[Tensor], batch_id: int,
                       detach: bool = True) -> List[Tensor]:
    """One image's slice of every level: (B, ...) per level -> (...) per level."""
    if not isinstance(mlvl_tensors, (list, tuple)):
        raise TypeError('select_single_mlvl expects a list or tuple of per-level tensors, '
                        f'got {type(mlvl_tensors).__name__}')
    if detach:
        return [level[batch_id].detach() for level in mlvl_tensors]
    return [level[batch_id] for level in mlvl_tensors]


def unpack_gt_instances(batch_data_samples: SampleList) -> tuple:
    """``(batch_gt_instances, batch_gt_instances_ignore, batch_img_metas)`` of
    a batch; an image without ``ignored_instances`` gets None."""
    batch_gt_instances, batch_gt_instances_ignore, batch_img_metas = [], [], []
    for data_sample in batch_data_samples:
        batch_img_metas.append(data_sample.metainfo)
        batch_gt_instances.append(data_sample.gt_instances)
        batch_gt_instances_ignore.append(data_sample.get('ignored_instances'))
    return batch_gt_instances, batch_gt_instances_ignore, batch_img_metas


# ---- inference ------------------------------------------------------------
def filter_scores_and_topk(scores: Tensor, score_thr: float, topk: int,
                           results: Optional[Dict[str, Tensor]] = None) -> tuple:
    """Keep the (prior, class) pairs scoring above ``score_thr``, the ``topk``
    best of them when there are more.

    Args:
        scores (Tensor): (N, C) per-prior class probabilities.
        score_thr (float): Pairs must score above this.
        topk (int): Most pairs kept; 0 or negative keeps every pair.
        results (dict[str, Tensor], optional): (N, ...) per-prior tensors
            to index alike.

    Returns:
        tuple: ``scores`` (M,), ``labels`` (M,), ``keep_idxs`` (M,) prior
        index of each pair, and ``results`` indexed by ``keep_idxs`` (None
        when not given).
    """
    num_classes = scores.shape[1]
    flat = scores.reshape(-1)
    candidates = (flat > score_thr).nonzero(as_tuple=True)[0]
    flat = flat[candidates]
    if 0 < topk < flat.numel():
        flat, order = flat.topk(topk)
        candidates = candidates[order]
    keep_idxs = torch.div(candidates, num_classes, rounding_mode='floor')
    filtered = None if results is None else {key: value[keep_idxs]
                                             for key, value in results.items()}
    return flat, candidates % num_classes, keep_idxs, filtered


def bboxes_to_original(bboxes: Tensor, img_meta: dict) -> Tensor:
    """Boxes in the network input's pixels -> the original image's, by the
    inverse of ``img_meta['scale_factor']`` (w, h).

    Args:
        bboxes (Tensor): (N, 4 * k) boxes, k boxes of x1, y1, x2, y2 per row.
        img_meta (dict): Needs ``scale_factor``.
    """
    if img_meta.get('scale_factor') is None:
        raise KeyError('rescale=True needs scale_factor in the image metainfo '
                       f'(keys: {sorted(img_meta)})')
    inverse = [1 / s for s in img_meta['scale_factor'][:2]]
    if bboxes.shape[-1] == 4:
        return scale_boxes(bboxes, inverse)
    return scale_boxes(bboxes.reshape(bboxes.size(0), -1, 4), inverse).reshape(bboxes.shape)


def empty_instances(batch_img_metas: List[dict],
                    device: torch.device,
                    task_type: str = 'bbox',
                    instance_results: Optional[List[Optional[InstanceData]]] = None,
                    num_classes: int = 80,
                    score_per_cls: bool = False) -> List[InstanceData]:
    """Results without detections, one per image.

    Args:
        batch_img_metas (list[dict]): One per image (``ori_shape`` for masks).
        device (torch.device): Device of the tensors.
        task_type (str): ``'bbox'`` (``bboxes`` (0, 4), ``scores``,
            ``labels`` (0,)) or ``'mask'`` (``masks`` (0, H, W) bool at the
            original size).
        instance_results (list, optional): Results to add the empty fields to.
        num_classes (int): With ``score_per_cls``, scores are
            (0, num_classes + 1).
        score_per_cls (bool): Scores per class, as an R-CNN head's raw output.
    """
    if task_type not in ('bbox', 'mask'):
        raise ValueError(f"empty_instances: task_type must be 'bbox' or 'mask', got {task_type!r}")
    if instance_results is not None and len(instance_results) != len(batch_img_metas):
        raise ValueError(f'empty_instances: {len(instance_results)} instance_results for '
                         f'{len(batch_img_metas)} images')
    results_list = []
    for index, img_meta in enumerate(batch_img_metas):
        results = InstanceData() if instance_results is None else instance_results[index]
        if task_type == 'bbox':
            results.bboxes = torch.zeros(0, 4, device=device)
            scores_shape = (0, num_classes + 1) if score_per_cls else (0, )
            results.scores = torch.zeros(scores_shape, device=device)
            results.labels = torch.zeros(0, dtype=torch.long, device=device)
        else:
            img_h, img_w = img_meta['ori_shape'][:2]
            results.masks = torch.zeros(0, img_h, img_w, dtype=torch.bool, device=device)
        results_list.append(results)
    return results_list


# ---- batched target assignment -------------------------------------------
def gathers_positives(tensor: Tensor) -> bool:
    """Whether a loss over the positive priors gathers them first (with
    ``nonzero``): on the CPU, which gives MMDetection's numbers bit for bit.
    Elsewhere the loss runs over every prior with zero weight off the
    positives (the same value to float rounding), since ``nonzero`` makes the
    host wait for the device to learn how many positives there are."""
    return tensor.device.type == 'cpu'


def dense_box_loss(loss_bbox: Callable, pred_boxes: Tensor, target_boxes: Tensor,
                   pos_mask: Tensor, weight: Optional[Tensor] = None, **kwargs) -> Tensor:
    """``loss_bbox`` of (M, 4) decoded boxes over every prior, with zero weight
    off the positives: the value of the loss over the gathered positives (to
    float rounding) without gathering them (see :func:`gathers_positives`).
    Off the positives prediction and target are both the box (0, 0, 1, 1), so
    that IoU-based losses stay finite there, and no gradient reaches those
    predictions. The stand-in box is filled on the device (a box copied from
    the host would make the host wait for the device).

    Args:
        loss_bbox (Callable): The box loss, called as
            ``loss_bbox(pred, target, weight=..., **kwargs)``.
        pred_boxes, target_boxes (Tensor): (M, 4) boxes.
        pos_mask (Tensor): (M,) bool positives.
        weight (Tensor, optional): (M,) weight of each positive, or (M, 4)
            of each coordinate; 1 when None.
        **kwargs: More arguments of ``loss_bbox`` (``avg_factor``, ...).
    """
    unit_box = torch.cat([pred_boxes.new_zeros(2), pred_boxes.new_ones(2)])
    on_positive = pos_mask.unsqueeze(1)
    weight = (pos_mask.to(pred_boxes.dtype) if weight is None
              else torch.where(on_positive if weight.dim() == 2 else pos_mask, weight, 0.0))
    return loss_bbox(torch.where(on_positive, pred_boxes, unit_box),
                     torch.where(on_positive, target_boxes, unit_box), weight=weight, **kwargs)


def logits_for_loss(loss_cls: Callable, cls_score: Tensor, labels: Tensor) -> Tensor:
    """``cls_score`` as a head hands it to ``loss_cls``: as it is where the loss
    says it computes half-precision logits in fp32 itself
    (``loss_cls.upcasts_logits(cls_score, labels)``: FocalLoss's fused loss,
    on CUDA), else in fp32. Under mixed precision the fp32 copy is one more
    tensor of every logit, which the loss keeps for backward.

    Args:
        loss_cls (Callable): The classification loss.
        cls_score (Tensor): (N, C) logits.
        labels (Tensor): (N,) labels, as the loss gets them.
    """
    upcasts_logits = getattr(loss_cls, 'upcasts_logits', None)
    if upcasts_logits is not None and upcasts_logits(cls_score, labels):
        return cls_score
    return cls_score.float()


def padded_positive_indices(pos_mask: Tensor, num_slots: int) -> Tuple[Tensor, Tensor]:
    """The flat indices of ``pos_mask``'s positives in ``num_slots`` slots of
    a size fixed on the host: ``pos_mask.nonzero()``'s order, then padding
    (index 0, not valid). A loss over a number of positives bounded on the
    host runs over the slots with zero weight off ``valid``, so the host never
    waits for the device to learn how many there are (see
    :func:`gathers_positives`). With more positives than slots, the first
    ``num_slots`` are kept.

    Args:
        pos_mask (Tensor): bool, any shape (flattened in row-major order).
        num_slots (int): Slots of the result.

    Returns:
        tuple: ``indices`` (num_slots,) int64 into ``pos_mask.reshape(-1)``
        and ``valid`` (num_slots,) bool, the slots holding a positive.
    """
    flat = pos_mask.reshape(-1)
    # A stable sort puts the positives first, in their order.
    order = torch.sort(flat.to(torch.uint8), descending=True, stable=True).indices
    if order.numel() < num_slots:
        order = torch.cat([order, order.new_zeros(num_slots - order.numel())])
    valid = torch.arange(num_slots, device=flat.device) < flat.sum()
    return torch.where(valid, order[:num_slots], 0), valid


def assigns_whole_batch(assigner, sampler, batch_gt_instances: Sequence[InstanceData],
                        batch_gt_instances_ignore: Optional[Sequence[Optional[InstanceData]]]
                        = None) -> bool:
    """Whether a head may compute this batch's targets at once: the assigner
    says so (``assigner.can_assign_batch(...)``, e.g. not with ignore regions
    it would use) and the sampler declares ``supports_batch``. Anything
    without those declarations runs image by image.
    """
    can_assign_batch = getattr(assigner, 'can_assign_batch', None)
    return (getattr(sampler, 'supports_batch', False) and can_assign_batch is not None
            and can_assign_batch(batch_gt_instances, batch_gt_instances_ignore))


def pad_gt_instances(batch_gt_instances: Sequence[InstanceData],
                     device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor, Tensor]:
    """Stack each image's gts into one padded batch.

    Args:
        batch_gt_instances (list[InstanceData]): ``bboxes`` (K_i, 4) and
            ``labels`` (K_i,) per image.
        device (torch.device, optional): Where the result lives; the first
            image's gts' device when None.

    Returns:
        tuple: ``bboxes`` (B, K, 4) float32, ``labels`` (B, K) long
        (``PAD_LABEL`` on padding) and ``valid`` (B, K) bool, K = max K_i and
        at least 1 (a padded slot when no image has gts, so that reductions
        and gathers over K are defined).
    """
    if len(batch_gt_instances) == 0:
        raise ValueError('pad_gt_instances needs at least one image')
    if device is None:
        device = batch_gt_instances[0].bboxes.device
    bboxes = [gt.bboxes.to(device=device, dtype=torch.float32).reshape(-1, 4)
              for gt in batch_gt_instances]
    labels = [gt.labels.to(device=device, dtype=torch.long).reshape(-1)
              for gt in batch_gt_instances]
    # Filled on the device: a tensor of counts built on the host would be a
    # host-to-device copy, which waits for the device's queue on CUDA.
    valid = [torch.ones(len(one), dtype=torch.bool, device=device) for one in labels]
    if all(len(one) == 0 for one in labels):
        bboxes[0] = bboxes[0].new_zeros((1, 4))
        labels[0] = labels[0].new_full((1, ), PAD_LABEL)
        valid[0] = valid[0].new_zeros((1, ))
    padded_bboxes = nn.utils.rnn.pad_sequence(bboxes, batch_first=True)
    padded_labels = nn.utils.rnn.pad_sequence(labels, batch_first=True, padding_value=PAD_LABEL)
    padded_valid = nn.utils.rnn.pad_sequence(valid, batch_first=True, padding_value=False)
    return padded_bboxes, padded_labels, padded_valid


def batch_valid_flags(strides: Sequence[Tuple[int, int]], num_base_priors: Sequence[int],
                      featmap_sizes: Sequence[Tuple[int, int]], pad_shapes: List[Tuple[int, int]],
                      device: torch.device) -> Tensor:
    """For each image, the priors on feature cells that cover its padded area.

    The same flags as ``AnchorGenerator.valid_flags`` image by image: a cell
    (y, x) of a level with stride (s_w, s_h) is valid when
    ``y < ceil(pad_h / s_h)`` and ``x < ceil(pad_w / s_w)``.

    Args:
        strides (list[tuple[int, int]]): (w, h) stride of each level.
        num_base_priors (list[int]): Priors per cell of each level.
        featmap_sizes (list): (h, w) of each level.
        pad_shapes (list[tuple[int, int]]): (h, w) of each image after padding.
        device (torch.device): Device of the flags.

    Returns:
        Tensor: (B, N) bool, priors in ``grid_priors`` order.
    """
    # Compared with Python numbers, image by image: a tensor of the limits made on
    # the host would be a copy to the device, which makes the host wait for a GPU.
    flags = []
    for (stride_w, stride_h), (feat_h, feat_w), num_priors in zip(strides, featmap_sizes,
                                                                  num_base_priors):
        rows, cols = torch.arange(feat_h, device=device), torch.arange(feat_w, device=device)
        cells = torch.stack([
            ((rows < min(math.ceil(pad_h / stride_h), feat_h))[:, None]
             & (cols < min(math.ceil(pad_w / stride_w), feat_w))[None, :]).reshape(-1)
            for pad_h, pad_w in pad_shapes])  # (B, h * w)
        flags.append(cells[:, :, None].expand(-1, -1, num_priors).reshape(len(pad_shapes), -1))
    return torch.cat(flags, dim=1)


def inside_image(anchors: Tensor, img_shapes: List[Tuple[int, int]],
                 allowed_border: float) -> Tensor:
    """(B, N) bool: anchors (N, 4) within ``allowed_border`` pixels of each
    image of (h, w) ``img_shapes``."""
    # Compared with Python numbers, image by image: a tensor of the shapes made on
    # the device's side would be a copy to the device, which makes the host wait for
    # a GPU. The bounds are summed on the CPU in the anchors' dtype, as on the device.
    bounds = (torch.tensor(img_shapes, dtype=anchors.dtype).reshape(-1, 2)
              + allowed_border).tolist()
    left_top = (anchors[:, 0] >= -allowed_border) & (anchors[:, 1] >= -allowed_border)
    return torch.stack([left_top & (anchors[:, 2] < max_w) & (anchors[:, 3] < max_h)
                        for max_h, max_w in bounds])


# ---- layers ---------------------------------------------------------------
def conv_tower(in_channels: int, feat_channels: int, num_convs: int,
               conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
               bias: Union[bool, str] = 'auto', inplace: bool = True,
               last_conv_cfg: Optional[dict] = None) -> nn.Sequential:
    """``num_convs`` ConvModules (3x3 conv, optional norm, ReLU) applied in
    order, keys ``{i}.conv`` and ``{i}.gn``/``{i}.bn`` as in MMDetection's
    towers (an empty tower passes its input through).

    Args:
        in_channels (int): Channels into the first conv.
        feat_channels (int): Channels out of every conv.
        num_convs (int): Number of convs.
        conv_cfg (dict, optional): Conv layer config.
        norm_cfg (dict, optional): Norm layer config, e.g. GN.
        bias (bool | str): Conv bias; ``'auto'``: only without a norm.
        inplace (bool): In-place ReLU.
        last_conv_cfg (dict, optional): Conv layer config of the last conv
            instead of ``conv_cfg`` (a deformable conv for a head's
            ``dcn_on_last_conv``).
    """
    return nn.Sequential(*[
        ConvModule(in_channels if i == 0 else feat_channels, feat_channels, 3, stride=1,
                   padding=1, norm_cfg=norm_cfg, bias=bias, inplace=inplace,
                   conv_cfg=last_conv_cfg if last_conv_cfg and i == num_convs - 1 else conv_cfg)
        for i in range(num_convs)])


def cls_reg_towers(in_channels: int, feat_channels: int, num_convs: int,
                   conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                   bias: Union[bool, str] = 'auto', last_conv_cfg: Optional[dict] = None
                   ) -> Tuple[nn.Sequential, nn.Sequential]:
    """A head's ``cls_convs`` and ``reg_convs`` (RetinaNet, FCOS, ATSS): two
    towers built alike by :func:`conv_tower`, with their own weights."""
    return tuple(conv_tower(in_channels, feat_channels, num_convs, conv_cfg, norm_cfg, bias,
                            last_conv_cfg=last_conv_cfg)
                 for _ in range(2))
