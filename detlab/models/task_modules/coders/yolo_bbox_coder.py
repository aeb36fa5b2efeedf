"""YOLOv3's box coding: cell-relative centre offsets and log size ratios to the anchor."""
from typing import Union

import torch
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import HorizontalBoxes, get_box_tensor
from detlab.structures.errors import AssertionValueError


@TASK_UTILS.register_module()
class YOLOBBoxCoder:
    """Encode a box against an anchor as (x, y, log w, log h), MMDetection 3.3's formula.

    ``x = (cx_gt - cx_anchor) / stride + 0.5`` clamped to ``[eps, 1 - eps]``
    (likewise y), ``log w = log(max(w_gt / w_anchor, eps))`` (likewise h).

    Args:
        eps (float): Clamp margin. Defaults to 1e-6.
        use_box_type (bool): ``decode`` returns HorizontalBoxes. Defaults to False.
    """

    #: Number of numbers one encoded box takes.
    encode_size = 4

    def __init__(self, eps: float = 1e-6, use_box_type: bool = False) -> None:
        self.eps = eps
        self.use_box_type = use_box_type

    def encode(self, bboxes: Union[Tensor, HorizontalBoxes], gt_bboxes: Union[Tensor,
                                                                              HorizontalBoxes],
               stride: Union[Tensor, int]) -> Tensor:
        """Targets of ``gt_bboxes`` against ``bboxes``.

        Args:
            bboxes (Tensor | HorizontalBoxes): (N, 4) anchors x1, y1, x2, y2.
            gt_bboxes (Tensor | HorizontalBoxes): (N, 4) boxes.
            stride (Tensor | int): (N,) or one stride of the anchors.

        Returns:
            Tensor: (N, 4) x, y in (0, 1), log w, log h.
        """
        bboxes, gt_bboxes = get_box_tensor(bboxes), get_box_tensor(gt_bboxes)
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or \
                gt_bboxes.size(-1) != 4:
            raise AssertionValueError('YOLOBBoxCoder.encode: expected bboxes and gt_bboxes of '
                                      f'one shape (N, 4), got {tuple(bboxes.shape)} and '
                                      f'{tuple(gt_bboxes.shape)}')
        centers_gt = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5
        sizes_gt = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        centers = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5
        sizes = bboxes[..., 2:] - bboxes[..., :2]
        log_sizes = torch.log((sizes_gt / sizes).clamp(min=self.eps))
        if isinstance(stride, Tensor):
            stride = stride[..., None]
        offsets = ((centers_gt - centers) / stride + 0.5).clamp(self.eps, 1 - self.eps)
        return torch.cat([offsets, log_sizes], dim=-1)

    def decode(self, bboxes: Union[Tensor, HorizontalBoxes], pred_bboxes: Tensor,
               stride: Union[Tensor, int]) -> Union[Tensor, HorizontalBoxes]:
        """Boxes from anchors and (x, y, log w, log h) predictions (x, y already in (0, 1)).

        Args:
            bboxes (Tensor | HorizontalBoxes): (..., 4) anchors.
            pred_bboxes (Tensor): (..., 4) predictions.
            stride (Tensor | int): One stride, or a tensor that broadcasts with
                (..., 2), e.g. (N, 1) (as YOLOV3Head passes it; unlike ``encode``,
                which takes (N,), as MMDetection's coder does).

        Returns:
            Tensor | HorizontalBoxes: (..., 4) x1, y1, x2, y2.
        """
        bboxes = get_box_tensor(bboxes)
        if pred_bboxes.size(-1) != 4 or bboxes.size(-1) != 4:
            raise AssertionValueError('YOLOBBoxCoder.decode: expected (..., 4) anchors and '
                                      f'predictions, got {tuple(bboxes.shape)} and '
                                      f'{tuple(pred_bboxes.shape)}')
        centers = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5 + (pred_bboxes[..., :2] - 0.5) * stride
        half_sizes = (bboxes[..., 2:] - bboxes[..., :2]) * 0.5 * pred_bboxes[..., 2:].exp()
        decoded = torch.cat([centers - half_sizes, centers + half_sizes], dim=-1)
        return HorizontalBoxes(decoded) if self.use_box_type else decoded
