"""CocoDataset: COCO detection JSON, labelled as MMDetection labels it."""
import os.path as osp
import warnings
from collections import Counter
from typing import Dict, List, Sequence, Tuple

from mmengine.fileio import exists, get_local_path

from detlab.registry import DATASETS
from detlab.utils.coco_json import is_coco_id, read_json
from .base_det_dataset import BaseDetDataset
from .coco_parsing import check_coco_json, parse_coco_images, parse_coco_instances
from .metainfo import COCO_CLASSES, COCO_PALETTE


class ClassOrderWarning(UserWarning):
    """The configured classes are not in the annotation file's category order."""


@DATASETS.register_module()
class CocoDataset(BaseDetDataset):
    """Dataset for COCO-format object detection.

    Labels follow MMDetection: the categories of the file whose names are in
    ``metainfo['classes']``, in the file's order (pycocotools'
    ``get_cat_ids(cat_names=classes)``), get labels ``0..K-1``; after loading,
    ``cat_ids[label]`` is a label's category id and ``cat2label`` /
    ``label2cat`` map between them. Annotations of other categories are
    dropped, so ``metainfo=dict(classes=(...))`` selects a subset.

    Where the configured order differs from the file's (or some classes are
    not in the file, which MMDetection also loads), ``metainfo['classes']``
    (and ``palette``) are put in label order, so every name shown for a label
    is right, and one :class:`ClassOrderWarning` says so. The set of names,
    and so the category ids an evaluator derives from them, is unchanged.

    Each item of the data list is ``dict(img_path, img_id, seg_map_path,
    height, width, instances=[dict(ignore_flag, bbox=[x1, y1, x2, y2],
    bbox_label, mask?)])``. Crowd annotations get ``ignore_flag=1``; boxes
    under one pixel wide or high or of zero area are dropped as in MMDetection,
    boxes reaching outside their image are clipped to it, and both are counted
    in the load's summary warning. An annotation with a non-positive size, a
    box wholly outside its image, an unknown category or image id is bad input
    (see :class:`BaseDetDataset`'s ``skip_bad_samples``). A file without an
    ``annotations`` key (``image_info_test-dev2017.json``) loads with no
    instances, for testing and ``format_only``.

    ``filter_empty_gt`` keeps, as MMDetection does, the images that have an
    annotation of a selected class (crowd or too small ones included; bad
    ones dropped under ``skip_bad_samples`` not).
    """

    METAINFO = {'classes': COCO_CLASSES, 'palette': COCO_PALETTE}
    #: Annotation ids must be unique: COCOeval matches by them.
    ANN_ID_UNIQUE = True

    def load_data_list(self) -> List[dict]:
        """Read ``self.ann_file`` and parse every image's annotations.

        Returns:
            list[dict]: One dict per usable image listed in the file.
        """
        content = self._read_json()
        self.cat_ids = self._select_cat_ids(content['categories'])
        self.cat2label = {cat_id: label for label, cat_id in enumerate(self.cat_ids)}
        self.label2cat = dict(enumerate(self.cat_ids))
        annotations = content.get('annotations', [])
        img_sizes = parse_coco_images(content['images'], self.bad_samples)
        file_cat_ids = {cat['id'] for cat in content['categories']}
        instances_per_img, self._img_ids_with_selected_anns = parse_coco_instances(
            annotations, img_sizes, file_cat_ids, self.cat2label, self.bad_samples)
        img_prefix = self.data_prefix.get('img', '')
        seg_prefix = self.data_prefix.get('seg')
        data_list = []
        for img in content['images']:
            if not isinstance(img, dict) or not is_coco_id(img.get('id')) \
                    or img['id'] not in img_sizes:
                continue
            width, height = img_sizes.pop(img['id'])  # pop: a duplicate id loads once
            seg_map_path = None
            if seg_prefix:
                seg_map_path = osp.join(
                    seg_prefix, img['file_name'].rsplit('.', 1)[0] + self.seg_map_suffix)
            data_list.append(dict(img_path=osp.join(img_prefix, img['file_name']),
                                  img_id=img['id'], seg_map_path=seg_map_path, height=height,
                                  width=width, instances=instances_per_img.get(img['id'], [])))
        return data_list

    def _read_json(self) -> dict:
        if not exists(self.ann_file, backend_args=self.backend_args):
            raise FileNotFoundError(
                f"{type(self).__name__}: annotation file '{osp.abspath(self.ann_file)}' does not "
                f"exist (ann_file joined with data_root='{self.data_root}').")
        with get_local_path(self.ann_file, backend_args=self.backend_args) as local_path:
            content = read_json(local_path, f'{type(self).__name__}: annotation file',
                                shown=self.ann_file)
        check_coco_json(content, self.ann_file)
        if self.ANN_ID_UNIQUE:
            ann_ids = [ann.get('id') for ann in content.get('annotations', [])
                       if isinstance(ann, dict) and is_coco_id(ann.get('id'))]
            repeated = [ann_id for ann_id, count in Counter(ann_ids).items() if count > 1]
            if repeated:
                raise ValueError(f"Annotation ids in '{self.ann_file}' are not unique: "
                                 f'{repeated[:5]} repeat; COCOeval matches detections by '
                                 'annotation id.')
        return content

    def _select_cat_ids(self, categories: Sequence[dict]) -> List[int]:
        """Category ids of the configured classes, in the file's order (MMDetection's)."""
        classes = self.metainfo.get('classes')
        if classes is None:
            raise ValueError(f'{self.name}: metainfo has no classes; give '
                             'metainfo=dict(classes=(...)).')
        selected = [cat for cat in categories if cat['name'] in classes]
        ids_by_name: Dict[str, List[int]] = {}
        for cat in selected:
            ids_by_name.setdefault(cat['name'], []).append(cat['id'])
        ambiguous = {name: ids for name, ids in ids_by_name.items() if len(ids) > 1}
        if ambiguous:
            raise ValueError(f'{self.name}: category names {ambiguous} (name: ids) are used by '
                             'more than one category; each class must name one category.')
        if categories and not selected:
            raise ValueError(
                f'{self.name}: none of the classes {tuple(classes)} is a category of the file; '
                f'its categories are {[cat["name"] for cat in categories]}. Set '
                "metainfo=dict(classes=(...)) to the category names you train on.")
        self._put_classes_in_label_order([cat['name'] for cat in selected])
        return [cat['id'] for cat in selected]

    def _put_classes_in_label_order(self, names_in_file_order: List[str]) -> None:
        """Reorder ``metainfo`` classes (and palette) so that ``classes[label]`` is right."""
        classes = list(self._metainfo['classes'])
        missing = [name for name in classes if name not in names_in_file_order]
        label_order = names_in_file_order + missing
        if label_order == classes:
            return
        notes = []
        if missing:
            notes.append(f'{len(missing)} classes ({_short(missing)}) are not categories of '
                         'the file and get no ground truth')
        notes.append(f"labels follow the file's category order, as in MMDetection: "
                     f'{_short(names_in_file_order)}')
        warnings.warn(f'{self.name}: the configured classes ({_short(classes)}) differ from the '
                      f"file's: {'; '.join(notes)}. metainfo['classes'] is put in label order "
                      'so that names shown for labels are right.', ClassOrderWarning,
                      stacklevel=2)
        new_order = [classes.index(name) for name in label_order]
        self._metainfo['classes'] = _like(self._metainfo['classes'], label_order)
        palette = self._metainfo.get('palette')
        if palette is not None and len(palette) == len(classes):
            self._metainfo['palette'] = _like(palette, [palette[i] for i in new_order])

    def has_gt(self, data_info: dict) -> bool:
        """MMDetection's rule: the image has an annotation of a selected class."""
        return data_info['img_id'] in self._img_ids_with_selected_anns


def _like(original: Sequence, items: List) -> Tuple:
    """``items`` as the container type of ``original`` (tuple or list)."""
    return tuple(items) if isinstance(original, tuple) else list(items)


def _short(names: Sequence[str], limit: int = 8) -> str:
    """The first ``limit`` names, quoted, and how many more."""
    shown = ', '.join(repr(name) for name in names[:limit])
    return shown + (f', ... {len(names) - limit} more' if len(names) > limit else '')
