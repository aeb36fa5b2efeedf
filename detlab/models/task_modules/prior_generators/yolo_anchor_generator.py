"""YOLO's anchors: fixed (w, h) sizes per level, centred on each cell's centre."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .anchor_generator import AnchorGenerator


@TASK_UTILS.register_module()
class YOLOAnchorGenerator(AnchorGenerator):
    """YOLOv3's anchor generator, MMDetection 3.3's arguments and anchors.

    Args:
        strides (list[int | tuple[int, int]]): Stride of each level.
        base_sizes (list[list[tuple[int, int]]]): (w, h) of each anchor of
            each level; every level has as many.
        use_box_type (bool): ``grid_priors`` returns HorizontalBoxes.
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 base_sizes: Sequence[Sequence[Tuple[int, int]]],
                 use_box_type: bool = False) -> None:
        if len(strides) != len(base_sizes) or len({len(level) for level in base_sizes}) != 1:
            raise AssertionValueError(f'YOLOAnchorGenerator: base_sizes needs one list per '
                                      f'stride, all of one length; got {len(strides)} strides '
                                      f'and base_sizes={[list(s) for s in base_sizes]}')
        self.strides = [_pair(stride) for stride in strides]
        self.centers = [(stride[0] / 2., stride[1] / 2.) for stride in self.strides]
        self.base_sizes = [[_pair(size) for size in level] for level in base_sizes]
        self.base_anchors = self.gen_base_anchors()
        self.use_box_type = use_box_type

    @property
    def num_levels(self) -> int:
        """int: Number of feature levels."""
        return len(self.base_sizes)

    def gen_base_anchors(self) -> List[Tensor]:
        """One (A, 4) tensor of anchors around the cell at (0, 0) per level."""
        return [self.gen_single_level_base_anchors(sizes, center)
                for sizes, center in zip(self.base_sizes, self.centers)]

    def gen_single_level_base_anchors(self, base_sizes_per_level: Sequence[Tuple[int, int]],
                                      center: Optional[Tuple[float, float]] = None) -> Tensor:
        """(A, 4) x1, y1, x2, y2 of the (w, h) sizes centred on ``center`` (x, y)."""
        x_center, y_center = center
        sizes = torch.tensor(base_sizes_per_level, dtype=torch.float32).reshape(-1, 2)
        half_w, half_h = 0.5 * sizes[:, 0], 0.5 * sizes[:, 1]
        return torch.stack([x_center - half_w, y_center - half_h, x_center + half_w,
                            y_center + half_h], dim=-1)
