"""CocoDataset: COCO detection JSON read through pycocotools."""
import contextlib
import io
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.fileio import exists, get_local_path, load
from pycocotools.coco import COCO

from detlab.registry import DATASETS
from .metainfo import COCO_CLASSES, COCO_PALETTE

#: Keys a COCO detection file must have, top level and per entry.
REQUIRED_TOP_KEYS = ('images', 'annotations', 'categories')
REQUIRED_ENTRY_KEYS = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}
#: Boxes thinner than this (in pixels, either side) carry no usable signal.
MIN_BOX_SIDE = 1.0


def _check_coco_json(content: object, ann_file: str) -> None:
    """Fail with the file and the missing key if ``content`` is not COCO detection JSON."""
    if not isinstance(content, dict):
        raise ValueError(f"Annotation file '{ann_file}' is not COCO detection JSON: its top "
                         f'level is a {type(content).__name__}, expected an object with keys '
                         f'{list(REQUIRED_TOP_KEYS)}.')
    for key in REQUIRED_TOP_KEYS:
        if key not in content:
            raise ValueError(f"Annotation file '{ann_file}' is not COCO detection JSON: it has no "
                             f"'{key}' key (found keys {sorted(content)}; expected "
                             f'{list(REQUIRED_TOP_KEYS)}).')
        for index, entry in enumerate(content[key]):
            missing = [k for k in REQUIRED_ENTRY_KEYS[key] if k not in entry]
            if missing:
                raise ValueError(f"Annotation file '{ann_file}': {key}[{index}] has no "
                                 f'{missing} (each entry of {key!r} needs '
                                 f'{list(REQUIRED_ENTRY_KEYS[key])}).')


@DATASETS.register_module()
class CocoDataset(BaseDataset):
    """Dataset for COCO-format object detection.

    Takes mmengine ``BaseDataset``'s arguments (``ann_file``, ``data_root``,
    ``data_prefix=dict(img=...)``, ``filter_cfg``, ``metainfo``, ``test_mode``,
    ``pipeline``, ``serialize_data``, ``lazy_init``, ...) plus ``backend_args``.

    COCO category ids (1..90 with gaps for COCO itself) become contiguous
    labels ``0..K-1`` in the order of ``metainfo['classes']``;
    ``metainfo=dict(classes=(...))`` selects a subset, and annotations of other
    categories are dropped. After loading, ``cat_ids[label]`` is the category id
    of a label, ``cat2label`` and ``label2cat`` map between them.

    Each item of the data list is ``dict(img_id, img_path, height, width,
    instances=[dict(bbox=[x1, y1, x2, y2], bbox_label, ignore_flag)])``. Crowd
    annotations get ``ignore_flag=1``; boxes narrower or shorter than one pixel,
    with zero area or wholly outside the image are dropped.

    ``filter_cfg=dict(filter_empty_gt=True, min_size=32)`` drops, unless
    ``test_mode``, images without any instance (crowd ones count, as in
    MMDetection) and images whose shorter side is below ``min_size``.

    Args:
        backend_args (dict, optional): mmengine file backend arguments.
        **kwargs: ``mmengine.dataset.BaseDataset`` arguments.
    """

    METAINFO = {'classes': COCO_CLASSES, 'palette': COCO_PALETTE}

    def __init__(self, *args, backend_args: dict = None, **kwargs) -> None:
        self.backend_args = backend_args
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read ``self.ann_file`` and parse every image's annotations.

        Returns:
            list[dict]: One dict per image listed in the file.
        """
        coco = self._load_coco()
        self.cat_ids = self._select_cat_ids(coco)
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self.label2cat = dict(enumerate(self.cat_ids))
        instances_per_img = self._parse_instances(coco)
        return [
            dict(
                img_id=img['id'],
                img_path=osp.join(self.data_prefix.get('img', ''), img['file_name']),
                height=img['height'],
                width=img['width'],
                instances=instances_per_img.get(img['id'], []))
            for img in coco.dataset['images']
        ]

    def _load_coco(self) -> COCO:
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f"{type(self).__name__}: annotation file '{osp.abspath(self.ann_file)}' does not "
                f"exist (ann_file joined with data_root='{self.data_root}').")
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            content = load(local_path, file_format='json')
        _check_coco_json(content, self.ann_file)
        ann_ids = [ann['id'] for ann in content['annotations']]
        if len(set(ann_ids)) != len(ann_ids):
            # COCOeval matches by annotation id, so duplicates corrupt evaluation.
            raise ValueError(f"Annotation ids in '{self.ann_file}' are not unique.")
        coco = COCO()
        coco.dataset = content
        # pycocotools prints progress on stdout; keep logs clean.
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        return coco

    def _select_cat_ids(self, coco: COCO) -> List[int]:
        """Category ids of ``metainfo['classes']``, in that order."""
        name_to_id: Dict[str, int] = {}
        for cat in coco.dataset['categories']:
            name_to_id.setdefault(cat['name'], cat['id'])
        classes: Sequence[str] = self.metainfo['classes']
        missing = [name for name in classes if name not in name_to_id]
        if missing:
            raise ValueError(
                f"metainfo classes {missing} are not categories of '{self.ann_file}'; "
                f'its categories are {sorted(name_to_id)}.')
        return [name_to_id[name] for name in classes]

    def _parse_instances(self, coco: COCO) -> Dict[int, List[dict]]:
        """Filter all annotations at once, then group the kept ones by image.

        Returns:
            dict: image id -> list of instance dicts.
        """
        anns = [ann for ann in coco.dataset['annotations'] if not ann.get('ignore', False)]
        if not anns:
            return {}
        xywh = np.array([ann['bbox'] for ann in anns], dtype=np.float64).reshape(-1, 4)
        area = np.array([ann.get('area', 1.0) for ann in anns], dtype=np.float64)
        img_size = np.array([(coco.imgs[ann['image_id']]['width'],
                              coco.imgs[ann['image_id']]['height'])
                             if ann['image_id'] in coco.imgs else (0, 0) for ann in anns],
                            dtype=np.float64)
        selected = np.array([ann['category_id'] in self.cat2label for ann in anns])
        x1, y1, w, h = xywh.T
        # Width/height of the part of the box inside the image.
        inter_w = np.clip(np.minimum(x1 + w, img_size[:, 0]) - np.maximum(x1, 0), 0, None)
        inter_h = np.clip(np.minimum(y1 + h, img_size[:, 1]) - np.maximum(y1, 0), 0, None)
        keep = ((inter_w * inter_h > 0) & (area > 0) & (w >= MIN_BOX_SIDE) &
                (h >= MIN_BOX_SIDE) & selected)
        xyxy = np.stack([x1, y1, x1 + w, y1 + h], axis=1)

        grouped: Dict[int, List[dict]] = {}
        for index in np.flatnonzero(keep):
            ann = anns[index]
            grouped.setdefault(ann['image_id'], []).append(
                dict(bbox=xyxy[index].tolist(),
                     bbox_label=self.cat2label[ann['category_id']],
                     ignore_flag=int(bool(ann.get('iscrowd', 0)))))
        return grouped

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg`` (never in ``test_mode``).

        Returns:
            list[dict]: The kept part of ``self.data_list``.
        """
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        return [
            info for info in self.data_list
            if (info['instances'] or not filter_empty_gt)
            and min(info['width'], info['height']) >= min_size
        ]

    def _serialize_data(self):
        # mmengine cannot serialise an empty list (e.g. every image filtered out).
        if not self.data_list:
            return np.zeros(0, np.uint8), np.zeros(0, np.int64)
        return super()._serialize_data()

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels (contiguous, 0..K-1) of the instances of image ``idx``.

        Named as in MMDetection, where class-balanced wrappers call it.

        Args:
            idx (int): Index in the dataset.

        Returns:
            list[int]: One label per instance.
        """
        return [instance['bbox_label'] for instance in self.get_data_info(idx)['instances']]
