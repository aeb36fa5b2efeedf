"""Batch augmentations run by DetDataPreprocessor after stacking (training only).

Each is an ``nn.Module`` called as ``aug(inputs, data_samples)`` with
``inputs`` (B, C, H, W) float and returns both, updated.
"""
import random
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.dist import barrier, broadcast, get_dist_info
from mmengine.logging import MessageHub
from mmengine.structures import PixelData
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures import SampleList
from detlab.structures.errors import AssertionValueError


def _scale_boxes_in_place(instances, scale_x: float, scale_y: float) -> None:
    if instances is not None and 'bboxes' in instances:
        instances.bboxes[..., 0::2] *= scale_x
        instances.bboxes[..., 1::2] *= scale_y


def pad_sem_seg(data_sample, height: int, width: int, pad_value: int) -> None:
    """Pad ``data_sample.gt_sem_seg`` bottom/right to (height, width)."""
    sem_seg = data_sample.gt_sem_seg.sem_seg
    pad = (0, max(width - sem_seg.shape[-1], 0), 0, max(height - sem_seg.shape[-2], 0))
    data_sample.gt_sem_seg = PixelData(
        sem_seg=F.pad(sem_seg, pad=pad, mode='constant', value=pad_value),
        metainfo=data_sample.gt_sem_seg.metainfo)


@MODELS.register_module()
class BatchSyncRandomResize(nn.Module):
    """Resize whole batches to a size redrawn every ``interval`` iterations (YOLOX multi-scale).

    The first batch keeps its size. After every ``interval``-th iteration
    (``MessageHub`` ``iter``), rank 0 draws a new height, a multiple of
    ``size_divisor`` in ``random_size_range``, and a width keeping the
    current batch's aspect ratio, and broadcasts it so every rank trains on
    the same size. Images are resized bilinearly; gt and ignored boxes and
    the ``img_shape``/``pad_shape``/``batch_input_shape`` metainfo follow.

    Args:
        random_size_range (tuple[int, int]): (min, max) height in pixels.
        interval (int): Iterations between redraws. Defaults to 10.
        size_divisor (int): Sizes are multiples of this. Defaults to 32.
    """

    def __init__(self, random_size_range: Tuple[int, int], interval: int = 10,
                 size_divisor: int = 32) -> None:
        super().__init__()
        if not 0 < random_size_range[0] <= random_size_range[1]:
            raise AssertionValueError('BatchSyncRandomResize: random_size_range must be 0 < min '
                                      f'<= max, got {random_size_range}.')
        self.rank, self.world_size = get_dist_info()
        self._input_size: Optional[Tuple[int, int]] = None
        self._random_size_range = (round(random_size_range[0] / size_divisor),
                                   round(random_size_range[1] / size_divisor))
        self._interval = interval
        self._size_divisor = size_divisor

    def forward(self, inputs: Tensor, data_samples: SampleList) -> Tuple[Tensor, SampleList]:
        height, width = inputs.shape[-2:]
        if self._input_size is None:
            self._input_size = (height, width)
        scale_y = self._input_size[0] / height
        scale_x = self._input_size[1] / width
        if scale_x != 1 or scale_y != 1:
            inputs = F.interpolate(inputs, size=self._input_size, mode='bilinear',
                                   align_corners=False)
            for data_sample in data_samples:
                img_h, img_w = data_sample.img_shape[:2]
                pad_h, pad_w = data_sample.pad_shape[:2]
                data_sample.set_metainfo(dict(
                    img_shape=(int(img_h * scale_y), int(img_w * scale_x)),
                    pad_shape=(int(pad_h * scale_y), int(pad_w * scale_x)),
                    batch_input_shape=self._input_size))
                _scale_boxes_in_place(data_sample.get('gt_instances'), scale_x, scale_y)
                _scale_boxes_in_place(data_sample.get('ignored_instances'), scale_x, scale_y)
        message_hub = MessageHub.get_current_instance()
        if (message_hub.get_info('iter', 0) + 1) % self._interval == 0:
            self._input_size = self._get_random_size(float(width / height), inputs.device)
        return inputs, data_samples

    def _get_random_size(self, aspect_ratio: float, device: torch.device) -> Tuple[int, int]:
        """Draw (h, w) on rank 0 and broadcast it to every rank."""
        size = torch.zeros(2, dtype=torch.long, device=device)
        if self.rank == 0:
            steps = random.randint(*self._random_size_range)
            size[0] = self._size_divisor * steps
            size[1] = self._size_divisor * int(aspect_ratio * steps)
        barrier()
        broadcast(size, 0)
        return int(size[0]), int(size[1])


@MODELS.register_module()
class BatchFixedSizePad(nn.Module):
    """Pad a batch (bottom/right) to at least ``size`` = (h, w).

    Updates ``batch_input_shape`` and ``pad_shape``; with ``pad_mask`` the gt
    masks and with ``pad_seg`` the semantic maps are padded too.

    Args:
        size (tuple[int, int]): (h, w) to pad to.
        img_pad_value (int): Fill of the images. Defaults to 0.
        pad_mask (bool): Pad ``gt_instances.masks``. Defaults to False.
        mask_pad_value (int): Fill of the masks. Defaults to 0.
        pad_seg (bool): Pad ``gt_sem_seg``. Defaults to False.
        seg_pad_value (int): Fill of the semantic maps. Defaults to 255.
    """

    def __init__(self, size: Tuple[int, int], img_pad_value: int = 0, pad_mask: bool = False,
                 mask_pad_value: int = 0, pad_seg: bool = False,
                 seg_pad_value: int = 255) -> None:
        super().__init__()
        self.size = size
        self.img_pad_value = img_pad_value
        self.pad_mask = pad_mask
        self.mask_pad_value = mask_pad_value
        self.pad_seg = pad_seg
        self.seg_pad_value = seg_pad_value

    def forward(self, inputs: Tensor,
                data_samples: Optional[SampleList] = None) -> Tuple[Tensor, Optional[SampleList]]:
        src_h, src_w = inputs.shape[-2:]
        dst_h, dst_w = self.size
        if src_h >= dst_h and src_w >= dst_w:
            return inputs, data_samples
        inputs = F.pad(inputs, pad=(0, max(0, dst_w - src_w), 0, max(0, dst_h - src_h)),
                       mode='constant', value=self.img_pad_value)
        for data_sample in data_samples or []:
            data_sample.set_metainfo(dict(batch_input_shape=(dst_h, dst_w),
                                          pad_shape=(dst_h, dst_w)))
            if self.pad_mask:
                masks = data_sample.gt_instances.masks
                data_sample.gt_instances.masks = masks.pad((dst_h, dst_w),
                                                           pad_val=self.mask_pad_value)
            if self.pad_seg:
                pad_sem_seg(data_sample, dst_h, dst_w, self.seg_pad_value)
        return inputs, data_samples
