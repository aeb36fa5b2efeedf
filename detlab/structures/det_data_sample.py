"""DetDataSample: one image's annotations and predictions, as mmdet 3.x carries them."""
from typing import List, Optional

from mmengine.structures import BaseDataElement, InstanceData

#: Results key (and ``gt_instances`` metainfo key) that is True when the gt
#: boxes were loaded after a ``Resize`` and so are in original-image pixels,
#: as in MMDetection's COCO test pipelines; metrics then must not unscale them.
GT_IN_ORI_IMAGE = 'gt_in_ori_image'


class DetDataSample(BaseDataElement):
    """The interface between the parts of a detector.

    Data fields:
        gt_instances (InstanceData): ``bboxes`` (N, 4) x1, y1, x2, y2 in pixels
            of the network input and ``labels`` (N,) contiguous class indices.
        ignored_instances (InstanceData): boxes to ignore in training, same fields.
        pred_instances (InstanceData): ``bboxes`` (M, 4) in pixels of the
            original image, ``scores`` (M,), ``labels`` (M,).

    Metainfo: ``img_id, img_path, ori_shape, img_shape, pad_shape,
    scale_factor, flip, flip_direction, batch_input_shape``.
    """

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self) -> None:
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self) -> None:
        del self._pred_instances

    @property
    def ignored_instances(self) -> InstanceData:
        return self._ignored_instances

    @ignored_instances.setter
    def ignored_instances(self, value: InstanceData) -> None:
        self.set_field(value, '_ignored_instances', dtype=InstanceData)

    @ignored_instances.deleter
    def ignored_instances(self) -> None:
        del self._ignored_instances


SampleList = List[DetDataSample]
OptSampleList = Optional[SampleList]
