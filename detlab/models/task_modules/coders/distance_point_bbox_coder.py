"""Boxes as distances from a point to their four sides (FCOS)."""
from typing import Optional, Sequence, Union

from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import bbox2distance, distance2bbox
from detlab.structures.errors import AssertionValueError

MaxShape = Union[Sequence[int], Tensor, Sequence[Sequence[int]]]


@TASK_UTILS.register_module()
class DistancePointBBoxCoder:
    """Encode a box seen from a point as (left, top, right, bottom) distances.

    Args:
        clip_border (bool): Clip decoded boxes to ``max_shape`` when it is
            given. Defaults to True.
    """

    #: Number of numbers one encoded box takes.
    encode_size = 4

    def __init__(self, clip_border: bool = True) -> None:
        self.clip_border = clip_border

    def encode(self, points: Tensor, gt_bboxes: Tensor, max_dis: Optional[float] = None,
               eps: float = 0.1) -> Tensor:
        """Distances from ``points`` to the sides of ``gt_bboxes``.

        Args:
            points (Tensor): (N, 2) x, y.
            gt_bboxes (Tensor): (N, 4) x1, y1, x2, y2.
            max_dis (float, optional): Clamp distances to [0, max_dis - eps].
            eps (float): See ``max_dis``. Defaults to 0.1.

        Returns:
            Tensor: (N, 4) left, top, right, bottom.
        """
        if points.size(-1) != 2 or gt_bboxes.size(-1) != 4 or \
                points.shape[:-1] != gt_bboxes.shape[:-1]:
            raise AssertionValueError('DistancePointBBoxCoder.encode: expected points (N, 2) and '
                                      f'gt_bboxes (N, 4), got {tuple(points.shape)} and '
                                      f'{tuple(gt_bboxes.shape)}')
        return bbox2distance(points, gt_bboxes, max_dis, eps)

    def decode(self, points: Tensor, pred_bboxes: Tensor,
               max_shape: Optional[MaxShape] = None) -> Tensor:
        """Boxes from ``points`` and predicted distances.

        Args:
            points (Tensor): (N, 2) or (B, N, 2) x, y.
            pred_bboxes (Tensor): (N, 4) or (B, N, 4) left, top, right,
                bottom distances.
            max_shape (Sequence[int] | Tensor | Sequence[Sequence[int]],
                optional): (h, w) to clip to, or one per image for batched
                input. Ignored when ``clip_border`` is False.

        Returns:
            Tensor: (N, 4) or (B, N, 4) x1, y1, x2, y2.
        """
        if points.size(-1) != 2 or pred_bboxes.size(-1) != 4 or \
                points.shape[:-1] != pred_bboxes.shape[:-1]:
            raise AssertionValueError('DistancePointBBoxCoder.decode: expected points (..., N, 2) '
                                      f'and pred_bboxes (..., N, 4), got {tuple(points.shape)} '
                                      f'and {tuple(pred_bboxes.shape)}')
        return distance2bbox(points, pred_bboxes, max_shape if self.clip_border else None)
