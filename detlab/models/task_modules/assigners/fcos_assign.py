"""FCOS's target assignment (Tian et al., "FCOS: Fully Convolutional One-Stage
Object Detection", 2019): which gt box each point regresses, for a whole batch.

A point may take a gt when it lies inside the box (or, with centre sampling,
inside a square of ``radius * stride`` around the box centre, cut to the box)
and the farthest of its four distances to the box sides is within its level's
regress range. Of the gts a point may take it takes the smallest by area; a
point that may take none is background (label ``num_classes``).
"""
from dataclasses import dataclass

import torch
from torch import Tensor

#: Area given to (point, gt) pairs that may not match, as in MMDetection; a
#: point whose smallest area is this is background.
INF = 1e8


@dataclass
class PointTargets:
    """FCOS targets of every point of every image.

    Attributes:
        labels (Tensor): (B, P) class of the matched gt; ``num_classes`` for
            background.
        bbox_targets (Tensor): (B, P, 4) distances left, top, right, bottom
            from the point to the matched gt's sides (meaningless for
            background points).
    """
    labels: Tensor
    bbox_targets: Tensor


def fcos_assign(points: Tensor,
                point_strides: Tensor,
                regress_ranges: Tensor,
                gt_bboxes: Tensor,
                gt_labels: Tensor,
                gt_valid: Tensor,
                num_classes: int,
                center_sampling: bool = False,
                center_sample_radius: float = 1.5) -> PointTargets:
    """Match every point of every image to at most one gt box.

    Args:
        points (Tensor): (P, 2) x, y of all levels' points, concatenated.
        point_strides (Tensor): (P,) stride of each point's level.
        regress_ranges (Tensor): (P, 2) lowest and highest allowed largest
            distance to the box sides, per point.
        gt_bboxes (Tensor): (B, K, 4) gt boxes per image, padded to K.
        gt_labels (Tensor): (B, K) long class of each gt.
        gt_valid (Tensor): (B, K) bool, False on padding.
        num_classes (int): The background label.
        center_sampling (bool): Only points near the box centre may match.
        center_sample_radius (float): Half side of the centre square, in
            strides of the point's level.

    Returns:
        PointTargets: labels (B, P) and bbox_targets (B, P, 4).
    """
    batch, num_gts = gt_labels.shape
    num_points = points.size(0)
    if num_gts == 0:
        return PointTargets(
            labels=gt_labels.new_full((batch, num_points), num_classes),
            bbox_targets=gt_bboxes.new_zeros((batch, num_points, 4)))
    xs = points[None, :, 0, None]  # (1, P, 1)
    ys = points[None, :, 1, None]
    x1, y1, x2, y2 = (gt_bboxes[:, None, :, i] for i in range(4))  # (B, 1, K) each
    # (B, P, K, 4)
    bbox_targets = torch.stack((xs - x1, ys - y1, x2 - xs, y2 - ys), dim=-1)

    if center_sampling:
        radius = point_strides[None, :, None] * center_sample_radius
        centre_x, centre_y = (x1 + x2) / 2, (y1 + y2) / 2
        centre_box = torch.stack((xs - torch.maximum(centre_x - radius, x1),
                                  ys - torch.maximum(centre_y - radius, y1),
                                  torch.minimum(centre_x + radius, x2) - xs,
                                  torch.minimum(centre_y + radius, y2) - ys), dim=-1)
        inside = centre_box.min(dim=-1).values > 0
    else:
        inside = bbox_targets.min(dim=-1).values > 0
    largest_distance = bbox_targets.max(dim=-1).values
    in_range = ((largest_distance >= regress_ranges[None, :, 0, None])
                & (largest_distance <= regress_ranges[None, :, 1, None]))

    areas = ((x2 - x1) * (y2 - y1)).expand(batch, num_points, num_gts)
    allowed = inside & in_range & gt_valid[:, None, :]
    areas = torch.where(allowed, areas, areas.new_tensor(INF))
    min_area, min_index = areas.min(dim=-1)  # (B, P)
    labels = gt_labels.gather(1, min_index)
    labels = torch.where(min_area == INF, labels.new_tensor(num_classes), labels)
    bbox_targets = bbox_targets.gather(
        2, min_index[..., None, None].expand(batch, num_points, 1, 4)).squeeze(2)
    return PointTargets(labels=labels, bbox_targets=bbox_targets)
