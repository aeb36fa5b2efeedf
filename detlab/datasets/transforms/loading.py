"""Loading an image and its annotations into the pipeline's results dict."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadAnnotations as MMCV_LoadAnnotations
from mmcv.transforms import LoadImageFromFile as MMCV_LoadImageFromFile
from mmengine import fileio

from detlab.registry import TRANSFORMS

#: Box types detlab understands: plain (N, 4) x1, y1, x2, y2 arrays.
SUPPORTED_BOX_TYPES = ('hbox', None)
#: Results key (and ``gt_instances`` metainfo key) that is True when the gt
#: boxes were loaded after a ``Resize`` and so are in original-image pixels,
#: as in MMDetection's COCO test pipelines; metrics then must not unscale them.
GT_IN_ORI_IMAGE = 'gt_in_ori_image'


@TRANSFORMS.register_module()
class LoadImageFromFile(MMCV_LoadImageFromFile):
    """Read ``results['img_path']`` into ``results['img']`` (H, W, 3) BGR uint8.

    Same arguments as mmcv's (``to_float32``, ``color_type``,
    ``imdecode_backend``, ``ignore_empty``, ``backend_args``); sets ``img``,
    ``img_shape`` and ``ori_shape`` (h, w). A missing or undecodable file
    raises ``FileNotFoundError`` naming the path, or returns None when
    ``ignore_empty`` (the dataset then draws another sample).
    """

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        try:
            img_bytes = fileio.get(path, backend_args=self.backend_args)
        except FileNotFoundError as error:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f"LoadImageFromFile: image '{path}' does not exist.") from error
        img = mmcv.imfrombytes(img_bytes, flag=self.color_type, backend=self.imdecode_backend)
        if img is None:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f"LoadImageFromFile: '{path}' could not be decoded as an "
                                    f'image ({len(img_bytes)} bytes, backend '
                                    f"'{self.imdecode_backend}').")
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class LoadAnnotations(MMCV_LoadAnnotations):
    """Turn the dataset's ``instances`` into gt arrays.

    Adds ``gt_bboxes`` float32 (N, 4) x1, y1, x2, y2 (shape (0, 4) when the
    image has none), ``gt_ignore_flags`` bool (N,) and ``gt_bboxes_labels``
    int64 (N,). ``with_seg`` loads ``gt_seg_map`` as mmcv does.

    Args:
        with_bbox (bool): Load boxes and ignore flags. Defaults to True.
        with_label (bool): Load labels. Defaults to True.
        with_mask (bool): Instance masks; detlab has none, so only False.
        box_type (str): ``'hbox'`` (MMDetection's name for these boxes) or None.
        **kwargs: mmcv ``LoadAnnotations`` arguments (``with_seg``,
            ``imdecode_backend``, ``backend_args``).
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = False,
                 box_type: Optional[str] = 'hbox',
                 **kwargs) -> None:
        if with_mask:
            raise ValueError('LoadAnnotations: with_mask=True is not supported; detlab has no '
                             'instance-mask models. Use with_mask=False.')
        if box_type not in SUPPORTED_BOX_TYPES:
            raise ValueError(f'LoadAnnotations: box_type={box_type!r} is not supported; detlab '
                             f'boxes are axis-aligned, use one of {SUPPORTED_BOX_TYPES}.')
        super().__init__(with_bbox=with_bbox, with_label=with_label, **kwargs)
        self.with_mask = with_mask
        self.box_type = box_type

    def _load_bboxes(self, results: dict) -> None:
        instances = results.get('instances', [])
        results[GT_IN_ORI_IMAGE] = 'scale_factor' in results
        results['gt_bboxes'] = np.array([inst['bbox'] for inst in instances],
                                        dtype=np.float32).reshape(-1, 4)
        results['gt_ignore_flags'] = np.array([inst.get('ignore_flag', 0) for inst in instances],
                                              dtype=bool)

    def _load_labels(self, results: dict) -> None:
        instances = results.get('instances', [])
        results['gt_bboxes_labels'] = np.array([inst['bbox_label'] for inst in instances],
                                               dtype=np.int64)


@TRANSFORMS.register_module()
class LoadImageFromNDArray(LoadImageFromFile):
    """Take ``results['img']``, an (H, W, 3) BGR array already in memory.

    The same outputs as :class:`LoadImageFromFile` (``img``, ``img_shape``,
    ``ori_shape``; ``img_path`` None), for running a detector on arrays
    (``inference_detector``, ``DetInferencer``, ``demo/video_demo.py``).
    """

    def transform(self, results: dict) -> dict:
        img = results.get('img')
        if not isinstance(img, np.ndarray) or img.ndim not in (2, 3):
            raise TypeError('LoadImageFromNDArray: results["img"] must be an (H, W) or '
                            f'(H, W, C) numpy array, got {type(img).__name__}.')
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_path'] = None
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
