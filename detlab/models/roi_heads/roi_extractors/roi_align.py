"""RoIAlign as a module with mmcv's ``RoIAlign`` arguments, on ``torchvision.ops.roi_align``."""
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple, Union

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align

from detlab.registry import MODELS

#: Fewest RoIs a thread is given: below that, one call on the calling thread is faster.
MIN_ROIS_PER_THREAD = 32

_pool: Optional[ThreadPoolExecutor] = None
_pool_key: Tuple[int, int] = (0, 0)  # (process id, workers) the pool was made for


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """The process's RoIAlign threads, made again after a fork (a forked child inherits
    the pool object but not its threads) or when the thread count changes."""
    global _pool, _pool_key
    key = (os.getpid(), workers)
    if _pool is None or _pool_key != key:
        _pool = ThreadPoolExecutor(workers, thread_name_prefix='detlab-roi-align')
        _pool_key = key
    return _pool


def roi_align_threads(input: Tensor, rois: Tensor) -> int:
    """How many threads ``threaded_roi_align`` splits these RoIs over (1: no split).

    torchvision's CPU kernel pools the RoIs one after another on the calling
    thread; the op releases the GIL, so chunks of RoIs run at once on
    ``torch.get_num_threads()`` threads. Each RoI's output depends on that RoI
    alone, so a split changes no value. Not split: GPU tensors, autocast (its
    state does not reach other threads), tracing/export and ``torch.compile``.
    """
    if (input.device.type != 'cpu' or torch.is_autocast_enabled('cpu')
            or torch.jit.is_tracing() or torch.jit.is_scripting()
            or torch.compiler.is_compiling()):
        return 1
    return max(1, min(torch.get_num_threads(), rois.size(0) // MIN_ROIS_PER_THREAD))


class _ThreadedRoIAlign(torch.autograd.Function):
    """Forward: the RoIs' chunks pooled on a thread pool. Backward: torchvision's
    backward kernel once over all RoIs, the gradient torchvision's autograd gives."""

    @staticmethod
    def forward(ctx, input: Tensor, rois: Tensor, output_size: Tuple[int, int],
                spatial_scale: float, sampling_ratio: int, aligned: bool,
                threads: int) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.args = (output_size, spatial_scale, sampling_ratio, aligned, input.shape)

        def pool_chunk(chunk: Tensor) -> Tensor:
            with torch.no_grad():  # grad mode is per thread; outputs need no graph here
                return torch.ops.torchvision.roi_align(input, chunk, spatial_scale,
                                                       output_size[0], output_size[1],
                                                       sampling_ratio, aligned)

        chunks = rois.chunk(threads)
        return torch.cat(list(_thread_pool(threads).map(pool_chunk, chunks)))

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        rois, = ctx.saved_tensors
        output_size, spatial_scale, sampling_ratio, aligned, shape = ctx.args
        grad_input = torch.ops.torchvision._roi_align_backward(
            grad_output, rois, spatial_scale, output_size[0], output_size[1], shape[0],
            shape[1], shape[2], shape[3], sampling_ratio, aligned)
        return grad_input, None, None, None, None, None, None


def threaded_roi_align(input: Tensor, rois: Tensor, output_size: Tuple[int, int],
                       spatial_scale: float = 1.0, sampling_ratio: int = -1,
                       aligned: bool = False) -> Tensor:
    """``torchvision.ops.roi_align`` (same arguments, ``rois`` a (K, 5) tensor), the RoIs
    split over CPU threads where ``roi_align_threads`` allows; the same values either way."""
    threads = roi_align_threads(input, rois)
    if threads == 1:
        return roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    return _ThreadedRoIAlign.apply(input, rois.contiguous(), tuple(output_size),
                                   float(spatial_scale), int(sampling_ratio), bool(aligned),
                                   threads)


@MODELS.register_module()
class RoIAlign(nn.Module):
    """Bilinear RoI pooling (Mask R-CNN), configured as mmcv's ``RoIAlign``.

    mmcv's kernel and torchvision's compute the same thing: ``aligned=True``
    shifts box corners by half a pixel (pixel centres at +0.5) and lets boxes
    be smaller than a pixel; ``aligned=False`` is the legacy form that
    stretches each box to at least 1x1. ``sampling_ratio=0`` samples
    ``ceil(roi_size / output_size)`` points per bin in each direction.
    On the CPU the RoIs are pooled on ``torch.get_num_threads()`` threads
    (``threaded_roi_align``), which torchvision's kernel alone does not do.

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
        return threaded_roi_align(input, rois.to(input.dtype), self.output_size,
                                  self.spatial_scale, self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f'output_size={self.output_size}, spatial_scale={self.spatial_scale}, '
                f'sampling_ratio={self.sampling_ratio}, pool_mode={self.pool_mode}, '
                f'aligned={self.aligned}')
