"""Class names of the datasets detlab reads, under MMDetection's names and aliases."""
from typing import Dict, List

from detlab.datasets.metainfo import COCO_CLASSES
from detlab.structures.errors import AssertionTypeError, AssertionValueError

#: The 20 PASCAL VOC classes, in the devkit's order.
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')

#: Each dataset name and the other names MMDetection accepts for it.
dataset_aliases: Dict[str, List[str]] = {
    'voc': ['voc', 'pascal_voc', 'voc07', 'voc12'],
    'coco': ['coco', 'mscoco', 'ms_coco'],
}


def voc_classes() -> List[str]:
    """Class names of PASCAL VOC."""
    return list(VOC_CLASSES)


def coco_classes() -> List[str]:
    """Class names of COCO detection (80 classes, in category-id order)."""
    return list(COCO_CLASSES)


_CLASSES_OF = {'voc': voc_classes, 'coco': coco_classes}


def get_classes(dataset: str) -> List[str]:
    """Class names of a dataset given by name or alias (e.g. ``'voc07'``).

    Raises:
        TypeError: when ``dataset`` is not a string.
        ValueError: naming the unknown name and the known aliases.
    """
    if not isinstance(dataset, str):
        raise AssertionTypeError('get_classes: dataset must be a str, got '
                                 f'{type(dataset).__name__}.')
    for name, aliases in dataset_aliases.items():
        if dataset in aliases:
            return _CLASSES_OF[name]()
    known = [alias for aliases in dataset_aliases.values() for alias in aliases]
    raise AssertionValueError(f'get_classes: unknown dataset {dataset!r}; known names: {known}.')
