"""R-CNN style box deltas (dx, dy, dw, dh) between priors and boxes."""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from detlab.registry import TASK_UTILS
from detlab.structures.bbox import clip_boxes
from detlab.structures.errors import AssertionValueError

#: Default clip of the predicted log width/height ratio: |log(16 / 1000)|,
#: which keeps exp(dw) from overflowing on wild early predictions.
DEFAULT_WH_RATIO_CLIP = 16 / 1000

MaxShape = Union[Sequence[int], Tensor, Sequence[Sequence[int]]]


@TASK_UTILS.register_module()
class DeltaXYWHBBoxCoder:
    """Encode boxes as normalised centre/size deltas w.r.t. priors and back.

    ``encode`` gives ``((gx - px) / pw, (gy - py) / ph, log(gw / pw),
    log(gh / ph))`` minus ``target_means``, divided by ``target_stds``;
    ``decode`` inverts it (with clamping), exactly as MMDetection does.

    Args:
        target_means (Sequence[float]): Means of the 4 deltas.
            Defaults to zeros.
        target_stds (Sequence[float]): Standard deviations of the 4 deltas.
            Defaults to ones.
        clip_border (bool): Clip decoded boxes to ``max_shape`` when it is
            given. Defaults to True.
        add_ctr_clamp (bool): Clamp the centre shift to ``ctr_clamp`` pixels
            and only the upper side of dw/dh (YOLOF). Defaults to False.
        ctr_clamp (int): Largest centre shift in pixels. Defaults to 32.
    """

    #: Number of numbers one encoded box takes.
    encode_size = 4

    def __init__(self,
                 target_means: Sequence[float] = (0., 0., 0., 0.),
                 target_stds: Sequence[float] = (1., 1., 1., 1.),
                 clip_border: bool = True,
                 add_ctr_clamp: bool = False,
                 ctr_clamp: int = 32) -> None:
        for name, value in (('target_means', target_means), ('target_stds', target_stds)):
            if len(value) != self.encode_size:
                raise AssertionValueError(f'DeltaXYWHBBoxCoder: {name} needs 4 values (dx, dy, '
                                          f'dw, dh), got {value!r}')
        if any(std <= 0 for std in target_stds):
            raise AssertionValueError(
                f'DeltaXYWHBBoxCoder: target_stds must be positive, got {target_stds!r}')
        self.means = tuple(target_means)
        self.stds = tuple(target_stds)
        self._device_stats = {}
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """Deltas that move ``bboxes`` onto ``gt_bboxes``.

        Args:
            bboxes (Tensor): (N, 4) source boxes (priors), x1, y1, x2, y2.
            gt_bboxes (Tensor): (N, 4) target boxes.

        Returns:
            Tensor: (N, 4) float deltas dx, dy, dw, dh.
        """
        if bboxes.shape != gt_bboxes.shape or bboxes.size(-1) != 4:
            raise AssertionValueError('DeltaXYWHBBoxCoder.encode: bboxes and gt_bboxes must both '
                                      f'be (N, 4), got {tuple(bboxes.shape)} and '
                                      f'{tuple(gt_bboxes.shape)}')
        bboxes, gt_bboxes = bboxes.float(), gt_bboxes.float()
        pxy = (bboxes[..., :2] + bboxes[..., 2:]) * 0.5
        pwh = bboxes[..., 2:] - bboxes[..., :2]
        gxy = (gt_bboxes[..., :2] + gt_bboxes[..., 2:]) * 0.5
        gwh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        means, stds = self._stats_like(deltas)
        return (deltas - means) / stds

    def _stats_like(self, tensor: Tensor) -> Tuple[Tensor, Tensor]:
        """``means`` and ``stds`` as (4,) tensors of ``tensor``'s device and
        dtype, made once per device and dtype: a tensor made from host values
        is a copy to the device, which makes the host wait for a GPU. (Those
        made in inference mode are kept apart: autograd cannot save them.)"""
        key = (tensor.device, tensor.dtype, torch.is_inference_mode_enabled())
        if key not in self._device_stats:
            self._device_stats[key] = (tensor.new_tensor(self.means), tensor.new_tensor(self.stds))
        return self._device_stats[key]

    def decode(self,
               bboxes: Tensor,
               pred_bboxes: Tensor,
               max_shape: Optional[MaxShape] = None,
               wh_ratio_clip: float = DEFAULT_WH_RATIO_CLIP) -> Tensor:
        """Apply predicted deltas to boxes.

        Args:
            bboxes (Tensor): (..., N, 4) priors, e.g. (N, 4) or (B, N, 4).
            pred_bboxes (Tensor): (..., N, 4 * C) deltas; C > 1 for
                class-specific regression, each class decoded from the same
                prior.
            max_shape (Sequence[int] | Tensor | Sequence[Sequence[int]],
                optional): (h, w) or (h, w, c) of the image to clip to, or one
                such shape per image when the boxes are batched (B, N, 4).
                Defaults to None (no clipping).
            wh_ratio_clip (float): dw and dh are clamped to
                ``|log(wh_ratio_clip)|``. Defaults to 16 / 1000.

        Returns:
            Tensor: (..., N, 4 * C) boxes x1, y1, x2, y2.
        """
        if (pred_bboxes.shape[:-1] != bboxes.shape[:-1] or bboxes.size(-1) != 4
                or pred_bboxes.size(-1) % 4 != 0):
            raise AssertionValueError('DeltaXYWHBBoxCoder.decode: expected bboxes (..., N, 4) and '
                                      f'pred_bboxes (..., N, 4 * C), got {tuple(bboxes.shape)} and '
                                      f'{tuple(pred_bboxes.shape)}')
        if pred_bboxes.numel() == 0:
            return pred_bboxes
        out_shape = pred_bboxes.shape
        deltas = pred_bboxes.reshape(*out_shape[:-1], -1, 4)  # (..., N, C, 4)
        means, stds = self._stats_like(deltas)
        denorm = deltas * stds + means
        dxy, dwh = denorm[..., :2], denorm[..., 2:]
        priors = bboxes[..., None, :].to(deltas.dtype)  # (..., N, 1, 4)
        pxy = (priors[..., :2] + priors[..., 2:]) * 0.5
        pwh = priors[..., 2:] - priors[..., :2]

        dxy_wh = pwh * dxy
        max_ratio = abs(math.log(wh_ratio_clip))
        if self.add_ctr_clamp:
            dxy_wh = dxy_wh.clamp(min=-self.ctr_clamp, max=self.ctr_clamp)
            dwh = dwh.clamp(max=max_ratio)
        else:
            dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
        gxy = pxy + dxy_wh
        gwh = pwh * dwh.exp()
        decoded = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
        if self.clip_border and max_shape is not None:
            decoded = clip_boxes(decoded, max_shape)
        return decoded.reshape(out_shape)
