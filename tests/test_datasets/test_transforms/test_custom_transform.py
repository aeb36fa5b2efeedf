"""A custom transform written for MMDetection 3.x runs unchanged in a detlab pipeline.

The class body below is how MMDetection 3.x users write transforms: it
treats ``results['gt_bboxes']`` as HorizontalBoxes and calls ``flip_``,
``rescale_``, ``clip_`` and ``areas``. Only the two import lines name detlab
instead of mmdet (same paths below the package).
"""
import numpy as np
from mmcv.transforms import BaseTransform, Compose

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import HorizontalBoxes, autocast_box_type


@TRANSFORMS.register_module()
class ShrinkFlipDropSmall(BaseTransform):
    """Halve the image, mirror it and drop boxes under ``min_area`` (MMDetection 3.x style)."""

    def __init__(self, min_area: float = 30.0) -> None:
        self.min_area = min_area

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        img = results['img'][::2, ::2][:, ::-1]
        results['img'] = np.ascontiguousarray(img)
        results['img_shape'] = img.shape[:2]
        bboxes = results['gt_bboxes']
        assert isinstance(bboxes, HorizontalBoxes)
        bboxes.rescale_([0.5, 0.5])
        bboxes.flip_(img.shape[:2], direction='horizontal')
        bboxes.clip_(img.shape[:2])
        keep = (bboxes.areas >= self.min_area).numpy()
        results['gt_bboxes'] = bboxes[keep]
        results['gt_bboxes_labels'] = results['gt_bboxes_labels'][keep]
        results['gt_ignore_flags'] = results['gt_ignore_flags'][keep]
        return results


def test_mmdetection_style_transform_in_a_detlab_pipeline(tmp_path):
    import cv2
    img = np.zeros((60, 80, 3), np.uint8)
    img[10:30, 20:60] = 255  # the big object
    img[50:54, 0:4] = 255  # a small one, dropped by the transform
    cv2.imwrite(str(tmp_path / 'x.png'), img)
    pipeline = Compose([
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='ShrinkFlipDropSmall', min_area=30),
        dict(type='Resize', scale=(80, 60), keep_ratio=True),
        dict(type='PackDetInputs'),
    ])
    packed = pipeline(dict(img_path=str(tmp_path / 'x.png'), img_id=0, instances=[
        dict(bbox=[20., 10, 60, 30], bbox_label=3, ignore_flag=0),
        dict(bbox=[0., 50, 4, 54], bbox_label=1, ignore_flag=0)]))
    gt = packed['data_samples'].gt_instances
    # halved and mirrored in a 40-wide image: x 10..30 -> 10..30, y 5..15; then resized x2
    assert gt.bboxes.tolist() == [[20, 10, 60, 30]]
    assert gt.labels.tolist() == [3]
    inputs = packed['inputs']
    # the big object's pixels (the small one, now unlabelled, sits at the bottom right)
    ys, xs = np.nonzero(inputs[0, :40].numpy() > 127)
    assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [20, 10, 60, 30]
