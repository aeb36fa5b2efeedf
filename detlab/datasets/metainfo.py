"""Class names and drawing colours shared by detlab's datasets."""
import colorsys
from typing import List, Tuple

#: The 80 COCO detection categories, in COCO category-id order.
COCO_CLASSES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush')

#: Hue step of the golden ratio: consecutive classes get far-apart hues.
_GOLDEN_HUE_STEP = 0.618033988749895
#: Saturation/value pairs cycled through so that classes with close hues still differ.
_SATURATION_VALUE = ((0.85, 0.95), (0.65, 0.75), (0.95, 0.6))


def distinct_palette(num_classes: int) -> List[Tuple[int, int, int]]:
    """Deterministic, visually distinct RGB colours, one per class.

    Args:
        num_classes (int): How many colours.

    Returns:
        list[tuple[int, int, int]]: RGB colours in 0..255.
    """
    palette = []
    for index in range(num_classes):
        hue = (index * _GOLDEN_HUE_STEP) % 1.0
        saturation, value = _SATURATION_VALUE[index % len(_SATURATION_VALUE)]
        red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
        palette.append((round(red * 255), round(green * 255), round(blue * 255)))
    return palette


COCO_PALETTE = distinct_palette(len(COCO_CLASSES))

#: The 20 Pascal VOC classes, in MMDetection's label order.
VOC_CLASSES = (
    'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
    'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
    'train', 'tvmonitor')
VOC_PALETTE = distinct_palette(len(VOC_CLASSES))
