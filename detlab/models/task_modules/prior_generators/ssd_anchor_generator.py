"""SSD's anchors: per level, ratio-1 boxes of the min size and of sqrt(min * max), plus
boxes of the min size at each extra aspect ratio (and its inverse)."""
import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor
from torch.nn.modules.utils import _pair

from detlab.registry import TASK_UTILS
from detlab.structures.errors import AssertionValueError
from .anchor_generator import AnchorGenerator

#: input_size -> {basesize_ratio_range[0]: (min, max) percent of the input for level 0},
#: the first level of MMDetection's SSD300/SSD512 COCO and VOC settings.
FIRST_LEVEL_PERCENT = {
    300: {0.15: (7, 15), 0.2: (10, 20)},
    512: {0.1: (4, 10), 0.15: (7, 15)},
}


def ssd_min_max_sizes(input_size: int, basesize_ratio_range: Tuple[float, float],
                      num_levels: int) -> Tuple[List[int], List[int]]:
    """MMDetection's SSD anchor sizes: from ``basesize_ratio_range`` (fractions of the
    input) in equal integer-percent steps for levels 1.., and a fixed first level.

    Raises:
        ValueError: An input size or range start MMDetection has no first level for.
    """
    if input_size not in FIRST_LEVEL_PERCENT or \
            basesize_ratio_range[0] not in FIRST_LEVEL_PERCENT[input_size]:
        valid = {size: sorted(starts) for size, starts in FIRST_LEVEL_PERCENT.items()}
        raise AssertionValueError(
            f'SSDAnchorGenerator: without min_sizes/max_sizes, input_size and '
            f'basesize_ratio_range[0] must be one of {valid} (input_size: range starts); got '
            f'input_size={input_size}, basesize_ratio_range={tuple(basesize_ratio_range)}')
    min_percent = int(basesize_ratio_range[0] * 100)
    max_percent = int(basesize_ratio_range[1] * 100)
    step = int(math.floor(max_percent - min_percent) / (num_levels - 2))
    first_min, first_max = FIRST_LEVEL_PERCENT[input_size][basesize_ratio_range[0]]
    min_sizes = [int(input_size * first_min / 100)]
    max_sizes = [int(input_size * first_max / 100)]
    for percent in range(min_percent, max_percent + 1, step):
        min_sizes.append(int(input_size * percent / 100))
        max_sizes.append(int(input_size * (percent + step) / 100))
    return min_sizes, max_sizes


@TASK_UTILS.register_module()
class SSDAnchorGenerator(AnchorGenerator):
    """SSD's anchor generator, MMDetection 3.3's arguments and anchors.

    Level k has ``1 + 2 * len(ratios[k]) + 1`` anchors centred on the cell
    centre (``stride / 2``): the ``min_sizes[k]`` square, the
    ``sqrt(min_sizes[k] * max_sizes[k])`` square, then ``min_sizes[k]``
    boxes of height/width ``1/r`` and ``r`` for each ``r`` in ``ratios[k]``.

    Args:
        strides (list[int | tuple[int, int]]): Stride of each level.
        ratios (list[list[float]]): Extra aspect ratios of each level.
        min_sizes, max_sizes (list[float], optional): Anchor sizes per level;
            both or neither. Without them, sizes follow
            :func:`ssd_min_max_sizes`.
        basesize_ratio_range (tuple[float, float]): Smallest and largest
            anchor size as fractions of ``input_size``. Defaults to (0.15, 0.9).
        input_size (int): 300 or 512 when sizes are derived. Defaults to 300.
        scale_major (bool): Anchor order before the selection above; SSD's
            configs use False. Defaults to True.
        use_box_type (bool): ``grid_priors`` returns HorizontalBoxes.
    """

    def __init__(self,
                 strides: Sequence[Union[int, Tuple[int, int]]],
                 ratios: Sequence[Sequence[float]],
                 min_sizes: Optional[Sequence[float]] = None,
                 max_sizes: Optional[Sequence[float]] = None,
                 basesize_ratio_range: Tuple[float, float] = (0.15, 0.9),
                 input_size: int = 300,
                 scale_major: bool = True,
                 use_box_type: bool = False) -> None:
        if len(strides) != len(ratios):
            raise AssertionValueError(f'SSDAnchorGenerator: one ratios list per stride needed; '
                                      f'got {len(strides)} strides and ratios={list(ratios)}')
        if (min_sizes is None) != (max_sizes is None):
            raise AssertionValueError('SSDAnchorGenerator: give both min_sizes and max_sizes, '
                                      f'or neither (got min_sizes={min_sizes}, '
                                      f'max_sizes={max_sizes})')
        self.strides = [_pair(stride) for stride in strides]
        self.centers = [(stride[0] / 2., stride[1] / 2.) for stride in self.strides]
        self.input_size = input_size
        self.basesize_ratio_range = tuple(basesize_ratio_range)
        if min_sizes is None:
            min_sizes, max_sizes = ssd_min_max_sizes(input_size, self.basesize_ratio_range,
                                                     self.num_levels)
        if not len(min_sizes) == len(max_sizes) == len(strides):
            raise AssertionValueError(f'SSDAnchorGenerator: {len(min_sizes)} min_sizes and '
                                      f'{len(max_sizes)} max_sizes for {len(strides)} levels')
        self.base_sizes = list(min_sizes)
        self.scales = [torch.Tensor([1., math.sqrt(high / low)])
                       for low, high in zip(min_sizes, max_sizes)]
        self.ratios = [torch.Tensor([1.] + [value for r in level for value in (1 / r, r)])
                       for level in ratios]
        self.scale_major = scale_major
        self.center_offset = 0
        self.octave_base_scale = self.scales_per_octave = None
        self.base_anchors = self.gen_base_anchors()
        self.use_box_type = use_box_type

    def gen_base_anchors(self) -> List[Tensor]:
        """Per level: the ratio/scale grid, keeping every ratio at scale 1 and the
        ratio-1 anchor at the second scale (placed second)."""
        anchors = []
        for level, base_size in enumerate(self.base_sizes):
            grid = self.gen_single_level_base_anchors(
                base_size, scales=self.scales[level], ratios=self.ratios[level],
                center=self.centers[level])
            keep = list(range(len(self.ratios[level])))
            keep.insert(1, len(keep))
            anchors.append(grid[torch.tensor(keep)])
        return anchors
