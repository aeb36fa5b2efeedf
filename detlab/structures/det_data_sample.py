"""DetDataSample: one image's annotations and predictions, as mmdet 3.x carries them."""
from typing import List, Optional

from mmengine.structures import BaseDataElement, InstanceData, PixelData


def _typed_field(name: str, dtype: type, doc: str) -> property:
    """A data field that only takes ``dtype`` values, stored as ``_<name>``.

    mmengine's ``set_field`` asserts the type, so a wrong value raises AssertionError,
    as it does for MMDetection's DetDataSample.
    """
    private = f'_{name}'

    def fget(self):
        return getattr(self, private)

    def fset(self, value) -> None:
        self.set_field(value, private, dtype=dtype)

    def fdel(self) -> None:
        delattr(self, private)

    return property(fget, fset, fdel, doc)


#: Results key (and ``gt_instances`` metainfo key) that is True when the gt
#: boxes were loaded after a ``Resize`` and so are in original-image pixels,
#: as in MMDetection's COCO test pipelines; metrics then must not unscale them.
GT_IN_ORI_IMAGE = 'gt_in_ori_image'


class DetDataSample(BaseDataElement):
    """The interface between the parts of a detector.

    Data fields (each only takes its type):
        gt_instances (InstanceData): ``bboxes`` (N, 4) x1, y1, x2, y2 in pixels
            of the network input and ``labels`` (N,) contiguous class indices.
        ignored_instances (InstanceData): boxes to ignore in training, same fields.
        proposals (InstanceData): region proposals, ``bboxes`` and ``scores``.
        pred_instances (InstanceData): ``bboxes`` (M, 4) in pixels of the
            original image, ``scores`` (M,), ``labels`` (M,).
        pred_track_instances (InstanceData): tracked instances (MMDetection's
            tracking field; detlab has no tracker and only carries it).
        gt_sem_seg, pred_sem_seg (PixelData): ``sem_seg`` (1, H, W) class maps.
        gt_panoptic_seg, pred_panoptic_seg (PixelData): ``panoptic_seg`` maps.

    Metainfo: ``img_id, img_path, ori_shape, img_shape, pad_shape,
    scale_factor, flip, flip_direction, batch_input_shape``.
    """

    gt_instances = _typed_field('gt_instances', InstanceData, 'Ground-truth instances.')
    pred_instances = _typed_field('pred_instances', InstanceData, 'Predicted instances.')
    ignored_instances = _typed_field('ignored_instances', InstanceData,
                                     'Instances ignored in training.')
    proposals = _typed_field('proposals', InstanceData, 'Region proposals.')
    pred_track_instances = _typed_field('pred_track_instances', InstanceData,
                                        'Tracked instances.')
    gt_sem_seg = _typed_field('gt_sem_seg', PixelData, 'Ground-truth semantic map.')
    pred_sem_seg = _typed_field('pred_sem_seg', PixelData, 'Predicted semantic map.')
    gt_panoptic_seg = _typed_field('gt_panoptic_seg', PixelData, 'Ground-truth panoptic map.')
    pred_panoptic_seg = _typed_field('pred_panoptic_seg', PixelData, 'Predicted panoptic map.')


SampleList = List[DetDataSample]
OptSampleList = Optional[SampleList]
