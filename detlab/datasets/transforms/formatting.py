"""Packing a pipeline's results into the model's (inputs, data_samples) form."""
from typing import Any, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform, to_tensor
from mmengine.structures import BaseDataElement, InstanceData, PixelData

from detlab.registry import TRANSFORMS
from detlab.structures import DetDataSample
from detlab.structures.bbox import BaseBoxes
from detlab.structures.det_data_sample import GT_IN_ORI_IMAGE
from detlab.structures.mask import BaseInstanceMasks

from ..bad_samples import SKIPPED_SAMPLES_KEY

#: Results keys that become InstanceData fields.
GT_FIELDS = {'gt_bboxes': 'bboxes', 'gt_bboxes_labels': 'labels', 'gt_masks': 'masks'}
DEFAULT_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
                     'flip_direction')
#: Types whose values ``copy.deepcopy`` returns as they are (tuples of them too).
_IMMUTABLE_ATOMS = (type(None), bool, int, float, str)


def _is_immutable(value: Any) -> bool:
    if type(value) is tuple:
        return all(_is_immutable(item) for item in value)
    return type(value) in _IMMUTABLE_ATOMS


def set_metainfo(element: BaseDataElement, metainfo: dict) -> None:
    """``element.set_metainfo(metainfo)`` without deep-copying immutable values.

    mmengine deep-copies the whole dict; for the str, int, float, bool, None
    and tuples of them that make up a sample's usual metainfo, ``deepcopy``
    returns the very same objects after walking them (a tenth of a pipeline's
    Python time), so those are set directly and only the rest is copied.
    """
    mutable = {}
    for key, value in metainfo.items():
        if _is_immutable(value):
            element.set_field(value, key, dtype=None, field_type='metainfo')
        else:
            mutable[key] = value
    if mutable:
        element.set_metainfo(mutable)


@TRANSFORMS.register_module()
class PackDetInputs(BaseTransform):
    """Pack the image and annotations for the detector.

    Returns ``dict(inputs, data_samples)``: ``inputs`` the image as a
    (C, H, W) tensor of the image's dtype (uint8 for a loaded image, 3
    channels for colour), a view of the image's (H, W, C) buffer when that is
    contiguous (see :meth:`_image_to_tensor`; MMDetection copies it to a
    contiguous tensor, with the same values); ``data_samples`` a :class:`DetDataSample`
    whose ``gt_instances`` hold the boxes with ``gt_ignore_flags`` False
    (``bboxes`` float32 (N, 4), ``labels`` int64 (N,)) and whose
    ``ignored_instances`` hold the rest; metainfo from ``meta_keys`` present
    in the results. Box objects (``HorizontalBoxes``) are packed as their plain
    tensor, so models always receive (N, 4) float tensors; ``gt_masks`` stay
    ``BitmapMasks``/``PolygonMasks`` (``masks``), as in MMDetection;
    ``gt_seg_map`` becomes ``gt_sem_seg`` (``PixelData``, (1, H, W)) and
    ``proposals`` (with ``proposals_scores``) become ``proposals``.

    Args:
        meta_keys (Sequence[str]): Results keys copied to the metainfo.
    """

    def __init__(self, meta_keys: Sequence[str] = DEFAULT_META_KEYS) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        packed = {}
        if 'img' in results:
            packed['inputs'] = self._image_to_tensor(results['img'])

        data_sample = DetDataSample()
        gt, ignored = InstanceData(), InstanceData()
        ignore_flags = results.get('gt_ignore_flags')
        keep = None if ignore_flags is None else ~np.asarray(ignore_flags, dtype=bool)
        for key, field in GT_FIELDS.items():
            if key not in results:
                continue
            values = results[key]
            if isinstance(values, BaseBoxes):
                values = values.tensor.numpy()
            elif not isinstance(values, BaseInstanceMasks):
                values = np.asarray(values)
            pack = (lambda v: v) if isinstance(values, BaseInstanceMasks) else to_tensor
            if keep is None:
                gt[field] = pack(values)
            else:
                gt[field] = pack(values[keep])
                ignored[field] = pack(values[~keep])
        if GT_IN_ORI_IMAGE in results:
            set_metainfo(gt, {GT_IN_ORI_IMAGE: bool(results[GT_IN_ORI_IMAGE])})
        data_sample.gt_instances = gt
        data_sample.ignored_instances = ignored
        if 'proposals' in results:
            data_sample.proposals = InstanceData(
                bboxes=to_tensor(np.asarray(results['proposals'])),
                scores=to_tensor(np.asarray(results['proposals_scores'])))
        if 'gt_seg_map' in results:
            sem_seg = PixelData(sem_seg=to_tensor(results['gt_seg_map'][None, ...].copy()))
            if 'ignore_index' in results:
                sem_seg.set_metainfo(dict(ignore_index=results['ignore_index']))
            data_sample.gt_sem_seg = sem_seg
        set_metainfo(data_sample,
                     {key: results[key] for key in self.meta_keys if key in results})
        if SKIPPED_SAMPLES_KEY in results:  # carried to BadSampleHook whatever the meta_keys
            data_sample.set_metainfo({SKIPPED_SAMPLES_KEY: results[SKIPPED_SAMPLES_KEY]})
        packed['data_samples'] = data_sample
        return packed

    @staticmethod
    def _image_to_tensor(img: np.ndarray) -> torch.Tensor:
        """(H, W, C) or (H, W) array -> (C, H, W) tensor; a view of ``img`` when it can be.

        A C-contiguous, writeable image is not copied: the tensor is its
        (C, H, W) view with channels-last strides, as torchvision's decoders
        return images. The data preprocessor's batching copies it once anyway
        (into the contiguous (B, C, H, W) batch), so a CHW copy here would be
        a second pass over every image in the loader workers. Other arrays
        (negative or uneven strides, read-only) are copied into a contiguous
        (C, H, W) tensor.
        """
        if img.ndim < 3:
            img = img[..., None]
        if img.flags.c_contiguous and img.flags.writeable:
            return torch.from_numpy(img).permute(2, 0, 1)
        return torch.from_numpy(img.transpose(2, 0, 1).copy(order='C'))

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
