"""Loading an image and its annotations into the pipeline's results dict."""
import re
from typing import Optional, Tuple

import cv2
import mmcv
import numpy as np
import pycocotools.mask as mask_util
import torch
from mmcv.transforms import BaseTransform
from mmcv.transforms import LoadAnnotations as MMCV_LoadAnnotations
from mmcv.transforms import LoadImageFromFile as MMCV_LoadImageFromFile
from mmengine import fileio

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import autocast_box_type, get_box_type
from detlab.structures.det_data_sample import GT_IN_ORI_IMAGE
from detlab.structures.mask import BitmapMasks, PolygonMasks

from .image_size import DEFAULT_MAX_PIXELS, check_pixel_limit
from .instance_ops import select_instances

#: Stand-in polygon of an instance whose mask annotation is unusable (it is then ignored).
FAKE_POLYGON = np.zeros(6)
_JPEG_START, _JPEG_END, _JPEG_SCAN = b'\xff\xd8', b'\xff\xd9', b'\xff\xda'
_PNG_SIGNATURE, _PNG_END = b'\x89PNG\r\n\x1a\n', b'IEND'
#: Image paths that are web addresses; detlab downloads nothing at run time.
WEB_URL = re.compile(r'^(https?|ftp)://', re.IGNORECASE)


def find_truncation(img_bytes: bytes) -> Optional[str]:
    """Why a JPEG or PNG byte string is cut short, or None if it looks whole.

    cv2 decodes a truncated JPEG without complaint (the missing rows come out
    grey), so completeness is checked on the container: a JPEG must close with
    an end-of-image marker after its last scan, a PNG must hold its IEND chunk.
    """
    if img_bytes.startswith(_JPEG_START):
        # Whole when the last end-of-image marker follows every scan. Only the
        # bytes after that marker are searched for a scan: searching the whole
        # file backwards for the last scan cost 2% of a training sample.
        end = img_bytes.rfind(_JPEG_END)
        if end < 2 or img_bytes.find(_JPEG_SCAN, end + 1) >= 0:
            return 'the JPEG data ends before its end-of-image marker (truncated file)'
    elif img_bytes.startswith(_PNG_SIGNATURE):
        if img_bytes.rfind(_PNG_END, -64) < 0:
            return 'the PNG data has no IEND chunk at its end (truncated file)'
    return None


def read_bytes(path, backend_args: Optional[dict]) -> bytes:
    """The file's bytes through mmengine's file backends; a local path without
    ``backend_args`` is read as mmengine's ``LocalBackend`` reads it, without looking
    the backend up again for every sample (a JSON dump and a registry lookup)."""
    if backend_args is None and '://' not in str(path):
        with open(path, 'rb') as file:
            return file.read()
    return fileio.get(path, backend_args=backend_args)


@TRANSFORMS.register_module()
class LoadImageFromFile(MMCV_LoadImageFromFile):
    """Read ``results['img_path']`` into ``results['img']``.

    Same arguments as mmcv's (``to_float32``, ``color_type``,
    ``imdecode_backend``, ``ignore_empty``, ``backend_args``). With the default
    ``color_type='color'`` every image comes out (H, W, 3) BGR uint8: grey
    images get three equal channels, 16-bit images are scaled to 8 bits, an
    alpha channel is dropped and the EXIF orientation is applied (as cv2's
    ``IMREAD_COLOR`` does). Sets ``img``, ``img_shape`` and ``ori_shape`` (h, w).

    A missing file raises ``FileNotFoundError`` naming the path (or returns
    None with ``ignore_empty``, so the dataset draws another sample); an
    empty, truncated or undecodable file also raises ``FileNotFoundError``
    (no usable image at that path), naming the path and what is wrong.
    An image whose header declares more than ``max_pixels`` pixels is refused
    before it is decoded (:class:`ImageTooLargeError`, naming the path and the
    size), and an ``http(s)://`` or ``ftp://`` path is refused (``ValueError``):
    detlab reads local files and downloads nothing at run time. Under a
    dataset's ``skip_bad_samples`` both are skipped like any unreadable image.

    Args:
        max_pixels (int, optional): The most pixels (width x height) an image
            may declare; None lifts the limit. Defaults to
            :data:`DEFAULT_MAX_PIXELS` (2**27).
        **kwargs: mmcv's arguments (``to_float32``, ``color_type``, ...).
    """

    def __init__(self, *args, max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if max_pixels is not None and (isinstance(max_pixels, bool) or
                                       not isinstance(max_pixels, int) or max_pixels < 1):
            raise ValueError(f'LoadImageFromFile: max_pixels must be a positive int or None, '
                             f'got {max_pixels!r}.')
        self.max_pixels = max_pixels

    def transform(self, results: dict) -> Optional[dict]:
        path = results['img_path']
        if WEB_URL.match(str(path)):
            raise ValueError(f"LoadImageFromFile: '{path}' is a URL; detlab reads images from "
                             'local files only and downloads nothing at run time. Download '
                             'it first and give the local path.')
        try:
            img_bytes = read_bytes(path, self.backend_args)
        except FileNotFoundError as error:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f"LoadImageFromFile: image '{path}' does not exist.") from error
        problem = 'the file is empty' if len(img_bytes) == 0 else find_truncation(img_bytes)
        img = None
        if problem is None:
            check_pixel_limit(img_bytes, path, self.max_pixels)
            try:
                img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                       backend=self.imdecode_backend)
            except cv2.error as error:
                problem = f"backend '{self.imdecode_backend}' failed: {str(error).strip()}"
            if img is None and problem is None:
                problem = (f'{len(img_bytes)} bytes could not be decoded as an image by backend '
                           f"'{self.imdecode_backend}'")
        if problem is not None:
            raise FileNotFoundError(f"LoadImageFromFile: cannot read image '{path}': {problem}.")
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


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


@TRANSFORMS.register_module()
class LoadAnnotations(MMCV_LoadAnnotations):
    """Turn the dataset's ``instances`` into gt entries, as MMDetection does.

    Adds ``gt_bboxes`` (N, 4) x1, y1, x2, y2 float32: a box object of
    ``box_type`` (``HorizontalBoxes`` for the default ``'hbox'``) or, with
    ``box_type=None``, an np.ndarray; ``gt_ignore_flags`` bool (N,);
    ``gt_bboxes_labels`` int64 (N,); with ``with_mask`` ``gt_masks``:
    :class:`BitmapMasks` (``poly2mask=True``) or :class:`PolygonMasks`, from
    COCO polygons or RLE (compressed or not). An instance whose mask is
    unusable (polygons of fewer than 3 points, or RLE with ``poly2mask=False``)
    gets an empty mask and is marked ignored.

    Args:
        with_bbox (bool): Load boxes and ignore flags. Defaults to True.
        with_label (bool): Load labels. Defaults to True.
        with_mask (bool): Load instance masks. Defaults to False.
        poly2mask (bool): Rasterise masks to bitmaps. Defaults to True.
        box_type (str, optional): Registered box type name. Defaults to 'hbox'.
        reduce_zero_label (bool): With ``with_seg``, map seg label 0 to
            ``ignore_index`` and shift the others down by one. Defaults to False.
        ignore_index (int): The seg map's ignore label. Defaults to 255.
        **kwargs: mmcv ``LoadAnnotations`` arguments (``with_seg``,
            ``imdecode_backend``, ``backend_args``).
    """

    def __init__(self,
                 with_bbox: bool = True,
                 with_label: bool = True,
                 with_mask: bool = False,
                 poly2mask: bool = True,
                 box_type: Optional[str] = 'hbox',
                 reduce_zero_label: bool = False,
                 ignore_index: int = 255,
                 **kwargs) -> None:
        if box_type is not None:
            get_box_type(box_type)  # fails early, naming the known types
        super().__init__(with_bbox=with_bbox, with_label=with_label, **kwargs)
        self.with_mask = with_mask
        self.poly2mask = poly2mask
        self.box_type = box_type
        self.reduce_zero_label = reduce_zero_label
        self.ignore_index = ignore_index

    def _load_bboxes(self, results: dict) -> None:
        instances = results.get('instances', [])
        results[GT_IN_ORI_IMAGE] = 'scale_factor' in results
        boxes = np.array([inst['bbox'] for inst in instances], dtype=np.float32).reshape(-1, 4)
        if self.box_type is None:
            results['gt_bboxes'] = boxes
        else:
            _, box_cls = get_box_type(self.box_type)
            results['gt_bboxes'] = box_cls(torch.from_numpy(boxes), clone=False)
        results['gt_ignore_flags'] = np.array([inst.get('ignore_flag', 0) for inst in instances],
                                              dtype=bool)

    def _load_labels(self, results: dict) -> None:
        instances = results.get('instances', [])
        results['gt_bboxes_labels'] = np.array([inst['bbox_label'] for inst in instances],
                                               dtype=np.int64)

    def _usable_mask(self, mask_ann) -> Optional[object]:
        """The annotation in a form ``_poly2mask``/PolygonMasks take, or None if unusable."""
        if isinstance(mask_ann, list):
            polygons = [np.asarray(p, dtype=np.float64) for p in mask_ann
                        if len(p) % 2 == 0 and len(p) >= 6]
            return polygons or None
        if not self.poly2mask:
            return None  # PolygonMasks cannot hold RLE
        if isinstance(mask_ann, dict) and mask_ann.get('size') is not None and isinstance(
                mask_ann.get('counts'), (list, str, bytes)):
            return mask_ann
        return None

    def _load_masks(self, results: dict) -> None:
        height, width = results['ori_shape']
        masks, ignore = [], []
        for inst in results.get('instances', []):
            if 'mask' not in inst:
                raise KeyError(f"LoadAnnotations(with_mask=True): an instance of image "
                               f"'{results.get('img_path')}' has no 'mask' (segmentation).")
            usable = self._usable_mask(inst['mask'])
            masks.append([FAKE_POLYGON] if usable is None else usable)
            ignore.append(bool(inst.get('ignore_flag', 0)) or usable is None)
        results['gt_ignore_flags'] = np.array(ignore, dtype=bool)
        if self.poly2mask:
            bitmaps = [poly2mask(mask, height, width) for mask in masks]
            results['gt_masks'] = BitmapMasks(bitmaps, height, width)
        else:
            results['gt_masks'] = PolygonMasks(masks, height, width)

    def _load_seg_map(self, results: dict) -> None:
        """``gt_seg_map`` (h, w) from ``seg_map_path``, as MMDetection loads it."""
        if results.get('seg_map_path') is None:
            return
        img_bytes = fileio.get(results['seg_map_path'], backend_args=self.backend_args)
        seg = mmcv.imfrombytes(img_bytes, flag='unchanged',
                               backend=self.imdecode_backend).squeeze()
        if self.reduce_zero_label:
            seg[seg == 0] = self.ignore_index
            seg = seg - 1
            seg[seg == self.ignore_index - 1] = self.ignore_index
        if results.get('label_map') is not None:
            original = seg.copy()
            for old_id, new_id in results['label_map'].items():
                seg[original == old_id] = new_id
        results['gt_seg_map'] = seg
        results['ignore_index'] = self.ignore_index

    def transform(self, results: dict) -> dict:
        if self.with_bbox:
            self._load_bboxes(results)
        if self.with_label:
            self._load_labels(results)
        if self.with_mask:
            self._load_masks(results)
        if self.with_seg:
            self._load_seg_map(results)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(with_bbox={self.with_bbox}, with_label={self.with_label}, '
                f'with_mask={self.with_mask}, with_seg={self.with_seg}, '
                f'poly2mask={self.poly2mask}, box_type={self.box_type!r})')


def poly2mask(mask_ann, height: int, width: int) -> np.ndarray:
    """(h, w) uint8 bitmap of COCO polygons (list), uncompressed or compressed RLE (dict)."""
    if isinstance(mask_ann, list):
        rle = mask_util.merge(mask_util.frPyObjects([list(p) for p in mask_ann], height, width))
    elif isinstance(mask_ann['counts'], list):
        rle = mask_util.frPyObjects(mask_ann, height, width)
    else:
        rle = mask_ann
    return mask_util.decode(rle).astype(np.uint8)


@TRANSFORMS.register_module()
class FilterAnnotations(BaseTransform):
    """Drop gt instances whose box is too small or whose mask is too small.

    ``by_box`` keeps boxes with width > ``min_gt_bbox_wh[0]`` and height >
    ``min_gt_bbox_wh[1]``; ``by_mask`` keeps masks with area >=
    ``min_gt_mask_area``; with both, an instance must pass both. Labels,
    ignore flags and masks follow their boxes. As in MMDetection, when no
    instance passes and ``keep_empty`` is True the sample is dropped (returns
    None, so the dataset draws another); otherwise it goes on with no
    instances. A sample that had no boxes to begin with passes unchanged.

    Args:
        min_gt_bbox_wh (tuple[int, int]): Minimum (w, h). Defaults to (1, 1).
        min_gt_mask_area (int): Minimum mask area. Defaults to 1.
        by_box (bool): Filter by box size. Defaults to True.
        by_mask (bool): Filter by mask area. Defaults to False.
        keep_empty (bool): See above. Defaults to True.
    """

    def __init__(self,
                 min_gt_bbox_wh: Tuple[int, int] = (1, 1),
                 min_gt_mask_area: int = 1,
                 by_box: bool = True,
                 by_mask: bool = False,
                 keep_empty: bool = True) -> None:
        if not (by_box or by_mask):
            raise ValueError('FilterAnnotations: set by_box and/or by_mask.')
        self.min_gt_bbox_wh = min_gt_bbox_wh
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    @autocast_box_type()
    def transform(self, results: dict) -> Optional[dict]:
        if 'gt_bboxes' not in results:
            raise KeyError('FilterAnnotations needs gt_bboxes; put LoadAnnotations before it.')
        boxes = results['gt_bboxes']
        if boxes.shape[0] == 0:
            return results
        keep = np.ones(len(boxes), dtype=bool)
        if self.by_box:
            keep &= ((boxes.widths > self.min_gt_bbox_wh[0]) &
                     (boxes.heights > self.min_gt_bbox_wh[1])).numpy()
        if self.by_mask:
            if results.get('gt_masks') is None:
                raise KeyError('FilterAnnotations(by_mask=True) needs gt_masks; load them with '
                               'LoadAnnotations(with_mask=True).')
            keep &= results['gt_masks'].areas >= self.min_gt_mask_area
        if not keep.any() and self.keep_empty:
            return None
        select_instances(results, keep)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(min_gt_bbox_wh={self.min_gt_bbox_wh}, '
                f'min_gt_mask_area={self.min_gt_mask_area}, by_box={self.by_box}, '
                f'by_mask={self.by_mask}, keep_empty={self.keep_empty})')
