"""Checking and parsing the parts of a COCO detection file, all annotations at once."""
import numbers
from typing import Dict, List, Mapping, Sequence, Set, Tuple

import numpy as np

from detlab.utils.coco_json import check_categories, id_problem, short_repr
from .bad_samples import BadSampleReport

#: Keys a COCO detection file must have at the top level (``annotations`` is
#: optional: test-dev's image_info files have none), and per entry.
REQUIRED_TOP_KEYS = ('images', 'categories')
REQUIRED_ENTRY_KEYS = {
    'images': ('id', 'file_name', 'width', 'height'),
    'annotations': ('id', 'image_id', 'category_id', 'bbox'),
    'categories': ('id', 'name'),
}
#: MMDetection drops boxes narrower or shorter than this, in pixels.
MIN_BOX_SIDE = 1.0


def check_coco_json(content: object, ann_file: str) -> None:
    """Fail, naming the file and what is missing, if ``content`` is not COCO detection JSON.

    Only the structure is checked here: images and annotations are checked
    one by one (and may be skipped) by the parsers below.
    """
    if not isinstance(content, dict):
        raise ValueError(f"Annotation file '{ann_file}' is not COCO detection JSON: its top "
                         f'level is a {type(content).__name__}, expected an object with keys '
                         f'{list(REQUIRED_TOP_KEYS)} and usually annotations.')
    for key in REQUIRED_TOP_KEYS:
        if key not in content:
            raise ValueError(f"Annotation file '{ann_file}' is not COCO detection JSON: it has no "
                             f"'{key}' key (found keys {sorted(content)}; expected "
                             f'{list(REQUIRED_TOP_KEYS)} and usually annotations).')
    for key in REQUIRED_TOP_KEYS + ('annotations',):
        if not isinstance(content.get(key, []), list):
            raise ValueError(f"Annotation file '{ann_file}': '{key}' is a "
                             f'{type(content[key]).__name__}, expected a list.')
    for index, cat in enumerate(content['categories']):
        needed = REQUIRED_ENTRY_KEYS['categories']
        missing = [k for k in needed if not isinstance(cat, dict) or k not in cat]
        if missing:
            raise ValueError(f"Annotation file '{ann_file}': categories[{index}] has no "
                             f'{missing} (each category needs {list(needed)}).')
    check_categories(content['categories'], ann_file)


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parse_coco_images(images: Sequence[object],
                      report: BadSampleReport) -> Dict[object, Tuple[float, float]]:
    """Sizes of the well-formed images, by image id, in file order.

    Returns:
        dict: image id -> (width, height) for each usable image.
    """
    sizes: Dict[object, Tuple[float, float]] = {}
    malformed, bad_id, bad_name, bad_size, repeated = [], [], [], [], []
    for index, img in enumerate(images):
        if not isinstance(img, dict) or any(k not in img for k in REQUIRED_ENTRY_KEYS['images']):
            malformed.append(f'images[{index}]')
        elif id_problem(img, 'images'):
            bad_id.append(f"images[{index}] ({id_problem(img, 'images')})")
        elif not isinstance(img['file_name'], str):
            bad_name.append(f"image id {img['id']} (file_name={img['file_name']!r})")
        elif not (_is_number(img['width']) and _is_number(img['height'])
                  and img['width'] > 0 and img['height'] > 0):
            bad_size.append(f"image id {img['id']} (width={img['width']!r}, "
                            f"height={img['height']!r})")
        elif img['id'] in sizes:
            repeated.append(f"image id {img['id']}")
        else:
            sizes[img['id']] = (img['width'], img['height'])
    report.bad(f"is not a COCO image entry (each needs {list(REQUIRED_ENTRY_KEYS['images'])})",
               malformed)
    report.bad('has an id that is not a COCO id (an integer that fits in 64 bits)', bad_id)
    report.bad('has a file_name that is not a string', bad_name)
    report.bad('has a width or height that is not a positive number', bad_size)
    report.bad('repeats an earlier image id (image ids must be unique)', repeated)
    return sizes


def _well_formed(ann: object) -> bool:
    if not isinstance(ann, dict) or any(k not in ann for k in REQUIRED_ENTRY_KEYS['annotations']):
        return False
    bbox = ann['bbox']
    return (isinstance(bbox, (list, tuple)) and len(bbox) == 4
            and all(_is_number(v) for v in bbox) and id_problem(ann, 'annotations') is None
            and _is_number(ann.get('area', 1.0)))


def _malformed_where(index: int, ann: object) -> str:
    """How a summary names a malformed annotation: its id, and a bad id field if any."""
    if not isinstance(ann, dict):
        return f'annotation #{index} ({short_repr(ann)})'
    problem = id_problem(ann, 'annotations')
    return f"annotation {short_repr(ann.get('id', f'#{index}'))}" + (
        f' ({problem})' if problem else '')


def parse_coco_instances(annotations: Sequence[object],
                         img_sizes: Mapping[object, Tuple[float, float]],
                         file_cat_ids: Set[object],
                         cat2label: Mapping[object, int],
                         report: BadSampleReport) -> Tuple[Dict[object, List[dict]], Set[object]]:
    """Check all annotations at once, then group the kept ones by image.

    Annotations with ``ignore`` set are left out (MMDetection's rule); those of
    categories not selected are dropped silently (a class subset).

    Args:
        annotations (Sequence): The file's ``annotations`` entries.
        img_sizes (Mapping): image id -> (width, height) of usable images.
        file_cat_ids (set): Every category id the file defines.
        cat2label (Mapping): Selected category id -> contiguous label.
        report (BadSampleReport): Where bad and dropped annotations go.

    Returns:
        tuple: ``(instances, img_ids_with_selected)``: image id -> list of
        ``dict(ignore_flag, bbox=[x1, y1, x2, y2], bbox_label, mask?)``; and
        the ids of images with a sound annotation of a selected class (kept or
        dropped as too small), which MMDetection's ``filter_empty_gt`` keeps.
    """
    anns = [ann for ann in annotations if not (isinstance(ann, dict) and ann.get('ignore'))]
    well_formed = [_well_formed(ann) for ann in anns]
    report.bad(f"is not a COCO annotation (each needs {list(REQUIRED_ENTRY_KEYS['annotations'])}: "
               'integer ids that fit in 64 bits, bbox=[x, y, w, h] of 4 numbers, a number as '
               'area if any)',
               (_malformed_where(i, ann) for i, (ann, ok) in enumerate(zip(anns, well_formed))
                if not ok))
    anns = [ann for ann, ok in zip(anns, well_formed) if ok]
    if not anns:
        return {}, set()

    def where(mask: np.ndarray) -> List[str]:
        return [f"annotation id {anns[i]['id']} (image id {anns[i]['image_id']}, bbox "
                f"{list(anns[i]['bbox'])})" for i in np.flatnonzero(mask)]

    known_img = np.array([ann['image_id'] in img_sizes for ann in anns])
    known_cat = np.array([ann['category_id'] in file_cat_ids for ann in anns])
    report.bad("refers to an image id that is not in 'images'", where(~known_img))
    report.bad(f"has a category_id that is not in 'categories' (ids {sorted(file_cat_ids)})",
               where(known_img & ~known_cat))
    xywh = np.array([ann['bbox'] for ann in anns], dtype=np.float64).reshape(-1, 4)
    size = np.array([img_sizes.get(ann['image_id'], (0, 0)) for ann in anns], dtype=np.float64)
    x1, y1, w, h = xywh.T
    checked = known_img & known_cat
    finite = np.isfinite(xywh).all(axis=1)
    report.bad('has a box coordinate that is not finite', where(checked & ~finite))
    non_positive = finite & ((w <= 0) | (h <= 0))
    report.bad('has a box of zero or negative width or height (bbox=[x, y, w, h] needs w > 0 '
               'and h > 0)', where(checked & non_positive))
    with np.errstate(invalid='ignore'):
        x2c = np.minimum(x1 + w, size[:, 0])
        y2c = np.minimum(y1 + h, size[:, 1])
        x1c, y1c = np.maximum(x1, 0), np.maximum(y1, 0)
        outside = finite & ~non_positive & ((x2c <= x1c) | (y2c <= y1c))
    report.bad('has a box wholly outside its image', where(checked & outside))

    selected = checked & finite & ~non_positive & ~outside & np.array(
        [ann['category_id'] in cat2label for ann in anns])
    area = np.array([ann.get('area', 1.0) for ann in anns], dtype=np.float64)
    too_small = ((w < MIN_BOX_SIDE) | (h < MIN_BOX_SIDE) | (area <= 0)
                 | (x2c - x1c < MIN_BOX_SIDE) | (y2c - y1c < MIN_BOX_SIDE))
    report.dropped('boxes under one pixel wide or high, or of zero area (dropped as MMDetection '
                   'does)', where(selected & too_small))
    keep = selected & ~too_small
    clipped = keep & ((x1c != x1) | (y1c != y1) | (x2c != x1 + w) | (y2c != y1 + h))
    report.dropped('boxes reaching outside their image, clipped to it', where(clipped))
    xyxy = np.stack([x1c, y1c, x2c, y2c], axis=1)

    grouped: Dict[object, List[dict]] = {}
    for index in np.flatnonzero(keep):
        ann = anns[index]
        instance = dict(ignore_flag=int(bool(ann.get('iscrowd', 0))), bbox=xyxy[index].tolist(),
                        bbox_label=cat2label[ann['category_id']])
        if ann.get('segmentation'):
            instance['mask'] = ann['segmentation']
        grouped.setdefault(ann['image_id'], []).append(instance)
    return grouped, {anns[index]['image_id'] for index in np.flatnonzero(selected)}
