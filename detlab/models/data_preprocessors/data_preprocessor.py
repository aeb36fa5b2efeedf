"""DetDataPreprocessor: from a collated batch to the detector's input tensor."""
import math
from numbers import Number
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import ImgDataPreprocessor
from mmengine.utils import is_seq_of
from torch import nn

from detlab.registry import MODELS
from detlab.structures import SampleList
from detlab.structures.errors import AssertionTypeError, AssertionValueError

from .batch_augments import pad_sem_seg

#: InstanceData fields of a data sample that may carry boxes.
_BOX_CARRIERS = ('gt_instances', 'ignored_instances', 'pred_instances', 'proposals')


def _padded_size(size: int, divisor: int) -> int:
    return int(math.ceil(size / divisor)) * divisor


@MODELS.register_module()
class DetDataPreprocessor(ImgDataPreprocessor):
    """Move a batch to the model's device, normalise it, pad and stack it.

    Per image: optional BGR<->RGB swap, conversion to float, ``(x - mean) /
    std``; then every image is padded bottom/right with ``pad_value`` to the
    batch's largest height/width rounded up to ``pad_size_divisor``, and the
    images are stacked. Each data sample gets metainfo ``batch_input_shape``
    (h, w) of the stacked tensor and ``pad_shape`` (h, w): its own size rounded
    up to the divisor. In training, ``pad_mask``/``pad_seg`` pad the gt masks
    and semantic maps to ``batch_input_shape``, and ``batch_augments`` (MODELS
    configs such as ``BatchSyncRandomResize`` or ``BatchFixedSizePad``, called
    as ``aug(inputs, data_samples)``) run last.

    Args:
        mean, std (Sequence[Number], optional): Per-channel statistics, in
            the channel order after any swap; None skips normalisation.
        pad_size_divisor (int): Padded sides are multiples of this.
        pad_value (Number): Value of padded pixels (after normalisation).
        pad_mask (bool): Pad ``gt_instances.masks`` in training. Defaults to False.
        mask_pad_value (int): Fill of padded masks. Defaults to 0.
        pad_seg (bool): Pad ``gt_sem_seg`` in training. Defaults to False.
        seg_pad_value (int): Fill of padded semantic maps. Defaults to 255.
        bgr_to_rgb, rgb_to_bgr (bool): Swap channels 0 and 2.
        boxtype2tensor (bool): Replace box objects (anything with a
            ``.tensor``) in the samples' instances by their tensor, as
            MMDetection does for its box types; detlab boxes already are tensors.
        non_blocking (bool): Non-blocking host-to-device copies (pinned
            memory, ``pin_memory=True`` in the dataloader, makes them overlap).
        batch_augments (list[dict], optional): Batch augmentation configs.

    ``forward(data, training)``: ``data = dict(inputs=[(3, H_i, W_i) tensor]
    or (B, 3, H, W) tensor, data_samples=[DetDataSample])`` -> ``dict(inputs=
    (B, 3, H, W) float tensor, data_samples=list)``.
    """

    def __init__(self,
                 mean: Optional[Sequence[Number]] = None,
                 std: Optional[Sequence[Number]] = None,
                 pad_size_divisor: int = 1,
                 pad_value: Number = 0,
                 pad_mask: bool = False,
                 mask_pad_value: int = 0,
                 pad_seg: bool = False,
                 seg_pad_value: int = 255,
                 bgr_to_rgb: bool = False,
                 rgb_to_bgr: bool = False,
                 boxtype2tensor: bool = True,
                 non_blocking: Optional[bool] = False,
                 batch_augments: Optional[List[dict]] = None) -> None:
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise AssertionValueError('DetDataPreprocessor: pad_size_divisor must be a positive '
                                      f'int, got {pad_size_divisor!r}.')
        if (mean is None) != (std is None):
            raise AssertionValueError('DetDataPreprocessor: give both mean and std, or neither '
                                      f'(got mean={mean}, std={std}).')
        if bgr_to_rgb and rgb_to_bgr:
            raise AssertionValueError('DetDataPreprocessor: bgr_to_rgb and rgb_to_bgr cannot both '
                                      'be True.')
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=bgr_to_rgb, rgb_to_bgr=rgb_to_bgr,
                         non_blocking=non_blocking)
        self.boxtype2tensor = boxtype2tensor
        self.pad_mask = pad_mask
        self.mask_pad_value = mask_pad_value
        self.pad_seg = pad_seg
        self.seg_pad_value = seg_pad_value
        self.batch_augments = (nn.ModuleList([MODELS.build(aug) for aug in batch_augments])
                               if batch_augments else None)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess a collated batch; see the class docstring for shapes."""
        pad_shapes = self._get_pad_shape(data)
        data = super().forward(data=data, training=training)
        inputs, data_samples = data['inputs'], data['data_samples']
        if data_samples is not None:
            batch_input_shape = tuple(inputs.shape[-2:])
            for data_sample, pad_shape in zip(data_samples, pad_shapes):
                data_sample.set_metainfo(
                    dict(batch_input_shape=batch_input_shape, pad_shape=pad_shape))
            if self.boxtype2tensor:
                _boxes_to_tensors(data_samples)
            if training and self.pad_mask:
                self.pad_gt_masks(data_samples)
            if training and self.pad_seg:
                self.pad_gt_sem_seg(data_samples)
        if training and self.batch_augments is not None:
            for batch_aug in self.batch_augments:
                inputs, data_samples = batch_aug(inputs, data_samples)
        return dict(inputs=inputs, data_samples=data_samples)

    def pad_gt_masks(self, batch_data_samples: SampleList) -> None:
        """Pad each sample's gt masks to its ``batch_input_shape``, in place."""
        for data_sample in batch_data_samples:
            masks = data_sample.gt_instances.get('masks')
            if masks is not None:
                data_sample.gt_instances.masks = masks.pad(data_sample.batch_input_shape,
                                                           pad_val=self.mask_pad_value)

    def pad_gt_sem_seg(self, batch_data_samples: SampleList) -> None:
        """Pad each sample's ``gt_sem_seg`` to its ``batch_input_shape``, in place."""
        for data_sample in batch_data_samples:
            if 'gt_sem_seg' in data_sample:
                pad_sem_seg(data_sample, *data_sample.batch_input_shape, self.seg_pad_value)

    def _get_pad_shape(self, data: dict) -> List[Tuple[int, int]]:
        """(h, w) of each image of ``data['inputs']`` rounded up to ``pad_size_divisor``."""
        inputs = data['inputs']
        divisor = self.pad_size_divisor
        if is_seq_of(inputs, torch.Tensor):
            return [(_padded_size(img.shape[-2], divisor), _padded_size(img.shape[-1], divisor))
                    for img in inputs]
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            shape = (_padded_size(inputs.shape[2], divisor), _padded_size(inputs.shape[3], divisor))
            return [shape] * inputs.shape[0]
        raise AssertionTypeError('DetDataPreprocessor: data["inputs"] must be a list of (C, H, W) '
                                 'tensors or a (B, C, H, W) tensor, got '
                                 f'{getattr(inputs, "shape", type(inputs).__name__)}.')


def _boxes_to_tensors(data_samples: SampleList) -> None:
    """Unwrap box objects (with a ``.tensor``) in the samples' instances, in place."""
    for data_sample in data_samples:
        for carrier in _BOX_CARRIERS:
            instances = data_sample.get(carrier)
            bboxes = None if instances is None else instances.get('bboxes')
            if bboxes is not None and not isinstance(bboxes, torch.Tensor) and hasattr(
                    bboxes, 'tensor'):
                instances.bboxes = bboxes.tensor
