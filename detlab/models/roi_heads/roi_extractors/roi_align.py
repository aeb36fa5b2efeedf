"""RoIAlign as a module with mmcv's ``RoIAlign`` arguments, on ``torchvision.ops.roi_align``."""
from typing import Tuple, Union

from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align

from detlab.registry import MODELS


@MODELS.register_module()
class RoIAlign(nn.Module):
    """Bilinear RoI pooling (Mask R-CNN), configured as mmcv's ``RoIAlign``.

    mmcv's kernel and torchvision's compute the same thing: ``aligned=True``
    shifts box corners by half a pixel (pixel centres at +0.5) and lets boxes
    be smaller than a pixel; ``aligned=False`` is the legacy form that
    stretches each box to at least 1x1. ``sampling_ratio=0`` samples
    ``ceil(roi_size / output_size)`` points per bin in each direction.

    Args:
        output_size (int | tuple[int, int]): (h, w) of each output.
        spatial_scale (float): Feature-map pixels per image pixel (1 / stride).
        sampling_ratio (int): Sample points per bin side; 0 picks adaptively.
        pool_mode (str): Only ``'avg'``, the mode torchvision implements.
        aligned (bool): See above. Defaults to True, as in mmcv.
        use_torchvision (bool): Accepted for mmcv configs; detlab always runs
            torchvision's op.
    """

    def __init__(self,
                 output_size: Union[int, Tuple[int, int]],
                 spatial_scale: float = 1.0,
                 sampling_ratio: int = 0,
                 pool_mode: str = 'avg',
                 aligned: bool = True,
                 use_torchvision: bool = False) -> None:
        super().__init__()
        if pool_mode != 'avg':
            raise ValueError(f"RoIAlign pool_mode={pool_mode!r} is not supported: detlab runs "
                             "torchvision.ops.roi_align, which averages; use pool_mode='avg'.")
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned
        self.use_torchvision = use_torchvision

    def forward(self, input: Tensor, rois: Tensor) -> Tensor:
        """Pool each RoI.

        Args:
            input (Tensor): (B, C, H, W) feature map.
            rois (Tensor): (K, 5) ``batch_index, x1, y1, x2, y2`` in image pixels.

        Returns:
            Tensor: (K, C, *output_size).
        """
        return roi_align(input, rois.to(input.dtype), self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, pool_mode={self.pool_mode}, '
                f'aligned={self.aligned}')
