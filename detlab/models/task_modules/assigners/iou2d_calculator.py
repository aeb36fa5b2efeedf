"""The IoU calculator that assigners build from ``iou_calculator=dict(...)``."""
from typing import Optional

from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import bbox_overlaps
from detlab.structures.errors import AssertionValueError

#: Box tensors may carry a score in a 5th column, which overlaps ignore.
BOX_DIM = 4
BOX_WITH_SCORE_DIM = 5


def _strip_score(name: str, bboxes: Tensor) -> Tensor:
    """Drop a trailing score column; fail on any other width."""
    if bboxes.numel() == 0 and bboxes.dim() < 2:
        return bboxes.new_zeros((0, BOX_DIM))
    if bboxes.size(-1) == BOX_WITH_SCORE_DIM:
        return bboxes[..., :BOX_DIM]
    if bboxes.size(-1) != BOX_DIM and bboxes.numel() != 0:
        raise AssertionValueError(f'BboxOverlaps2D: {name} must be (N, 4) or (N, 5) with a score '
                                  f'column, got shape {tuple(bboxes.shape)}')
    return bboxes


@TASK_UTILS.register_module()
class BboxOverlaps2D:
    """Overlaps (IoU, IoF, GIoU) between 2D boxes.

    Args:
        scale (float): Boxes are divided by this before a half-precision
            computation, so large coordinates do not overflow fp16.
            Defaults to 1.
        dtype (str, optional): ``'fp16'`` to compute in half precision (saves
            memory on GPU), None for the boxes' own dtype. Defaults to None.
    """

    def __init__(self, scale: float = 1., dtype: Optional[str] = None) -> None:
        if dtype not in (None, 'fp16'):
            raise AssertionValueError("BboxOverlaps2D: dtype must be None or 'fp16', got "
                                      f"{dtype!r}")
        self.scale = scale
        self.dtype = dtype

    def __call__(self,
                 bboxes1: Tensor,
                 bboxes2: Tensor,
                 mode: str = 'iou',
                 is_aligned: bool = False) -> Tensor:
        """Overlaps between two sets of boxes.

        Args:
            bboxes1 (Tensor): (M, 4) x1, y1, x2, y2, or (M, 5) with a score.
            bboxes2 (Tensor): (N, 4) or (N, 5); may be empty.
            mode (str): ``'iou'``, ``'iof'`` or ``'giou'``.
            is_aligned (bool): Pairwise by index only (M == N).

        Returns:
            Tensor: (M, N), or (M,) when ``is_aligned``.
        """
        bboxes1 = _strip_score('bboxes1', bboxes1)
        bboxes2 = _strip_score('bboxes2', bboxes2)
        if self.dtype == 'fp16':
            bboxes1 = (bboxes1 / self.scale).half()
            bboxes2 = (bboxes2 / self.scale).half()
            overlaps = bbox_overlaps(bboxes1, bboxes2, mode, is_aligned)
            # CPU half kernels are slow and patchy; hand back float32 there.
            if not overlaps.is_cuda:
                overlaps = overlaps.float()
            return overlaps
        return bbox_overlaps(bboxes1, bboxes2, mode, is_aligned)

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(scale={self.scale}, dtype={self.dtype})'
