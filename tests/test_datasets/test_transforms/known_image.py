"""A generated image with bright rectangles at known places; checks that boxes still fit them."""
import numpy as np

from detlab.datasets.transforms import LoadAnnotations

#: Pixels brighter than this (max over channels) belong to an object; fills are 0.
BRIGHT_THRESHOLD = 60
#: Boxes may differ from the bright region by this much (interpolation at edges).
EDGE_TOLERANCE = 2.0

BOXES = ((20, 15, 60, 45), (90, 50, 140, 100))


def make_sample(height=120, width=160, boxes=BOXES, with_mask=False, poly2mask=True):
    """Results after LoadAnnotations for a black image with white filled ``boxes``."""
    img = np.zeros((height, width, 3), np.uint8)
    instances = []
    for label, (x1, y1, x2, y2) in enumerate(boxes):
        img[y1:y2, x1:x2] = 255
        instances.append(dict(bbox=[float(x1), float(y1), float(x2), float(y2)],
                              bbox_label=label, ignore_flag=0,
                              mask=[[x1, y1, x2, y1, x2, y2, x1, y2]]))
    results = dict(img=img, img_shape=(height, width), ori_shape=(height, width),
                   img_path='generated.png', instances=instances)
    return LoadAnnotations(with_mask=with_mask, poly2mask=poly2mask)(results)


def bright_box(mask: np.ndarray):
    """Tight (x1, y1, x2, y2) pixel-edge box of a boolean (h, w) region, or None."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64)


def assert_boxes_fit_objects(results, tolerance=EDGE_TOLERANCE, strays_allowed=False):
    """Every bright pixel lies in some box, and each box is the tight box of its bright pixels.

    ``strays_allowed`` skips the first half, for transforms that drop boxes
    whose objects stay partly visible (MinIoURandomCrop drops boxes by centre).
    """
    img = np.asarray(results['img'], np.float32)
    bright = (img.max(axis=2) if img.ndim == 3 else img) > BRIGHT_THRESHOLD
    boxes = results['gt_bboxes']
    boxes = boxes.numpy() if hasattr(boxes, 'numpy') else np.asarray(boxes)
    height, width = bright.shape
    assert results['img_shape'] == (height, width)
    assert np.all(boxes[:, 0::2] >= 0) and np.all(boxes[:, 0::2] <= width)
    assert np.all(boxes[:, 1::2] >= 0) and np.all(boxes[:, 1::2] <= height)
    covered = np.zeros_like(bright)
    for x1, y1, x2, y2 in boxes:
        lo_x, lo_y = int(max(np.floor(x1 - tolerance), 0)), int(max(np.floor(y1 - tolerance), 0))
        hi_x, hi_y = int(np.ceil(x2 + tolerance)), int(np.ceil(y2 + tolerance))
        covered[lo_y:hi_y, lo_x:hi_x] = True
        inside = np.zeros_like(bright)
        inside[lo_y:hi_y, lo_x:hi_x] = bright[lo_y:hi_y, lo_x:hi_x]
        found = bright_box(inside)
        assert found is not None, f'box {(x1, y1, x2, y2)} holds no object pixels'
        assert np.allclose(found, [x1, y1, x2, y2], atol=tolerance + 1), (found, (x1, y1, x2, y2))
    stray = bright & ~covered
    assert strays_allowed or stray.sum() == 0, f'{stray.sum()} object pixels lie outside every box'
    n = len(boxes)
    assert len(results['gt_bboxes_labels']) == n and len(results['gt_ignore_flags']) == n


def assert_masks_follow_boxes(results, tolerance=EDGE_TOLERANCE):
    """Each mask's enclosing box matches its gt box (masks moved with the boxes)."""
    masks = results['gt_masks']
    boxes = results['gt_bboxes'].numpy()
    assert len(masks) == len(boxes)
    assert (masks.height, masks.width) == tuple(results['img_shape'])
    mask_boxes = masks.get_bboxes('hbox').numpy()
    assert np.allclose(mask_boxes, boxes, atol=tolerance + 1), (mask_boxes, boxes)
