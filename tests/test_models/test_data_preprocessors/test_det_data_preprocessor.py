"""DetDataPreprocessor: channel flip, normalisation, padding and batch metainfo."""
import numpy as np
import pytest
import torch

from detlab.models.data_preprocessors import DetDataPreprocessor
from detlab.registry import MODELS
from detlab.structures import DetDataSample


def image(height, width, bgr):
    img = torch.empty(3, height, width, dtype=torch.uint8)
    for channel, value in enumerate(bgr):
        img[channel] = value
    return img


def test_flip_normalise_pad_and_metainfo():
    preprocessor = MODELS.build(dict(type='DetDataPreprocessor', mean=[10, 20, 30],
                                     std=[2, 4, 5], bgr_to_rgb=True, pad_size_divisor=8,
                                     pad_value=-1))
    inputs = [image(5, 9, bgr=(50, 60, 70)), image(12, 4, bgr=(0, 0, 0))]
    samples = [DetDataSample(metainfo=dict(img_shape=(5, 9))),
               DetDataSample(metainfo=dict(img_shape=(12, 4)))]
    out = preprocessor(dict(inputs=inputs, data_samples=samples), training=True)
    batch = out['inputs']
    assert batch.shape == (2, 3, 16, 16) and batch.dtype == torch.float32
    # BGR (50, 60, 70) -> RGB (70, 60, 50), then (x - mean) / std
    assert torch.allclose(batch[0, :, :5, :9],
                          torch.tensor([30.0, 10.0, 4.0]).view(3, 1, 1).expand(3, 5, 9))
    assert torch.all(batch[0, :, 5:, :] == -1) and torch.all(batch[0, :, :, 9:] == -1)
    assert torch.all(batch[1, :, :, 4:] == -1)
    assert out['data_samples'][0].batch_input_shape == (16, 16)
    assert out['data_samples'][0].pad_shape == (8, 16)
    assert out['data_samples'][1].pad_shape == (16, 8)


def test_no_normalisation_no_flip_divisor_one():
    preprocessor = DetDataPreprocessor()
    img = image(3, 2, bgr=(1, 2, 3))
    out = preprocessor(dict(inputs=[img], data_samples=[DetDataSample()]))
    assert torch.equal(out['inputs'][0], img.float())
    assert out['data_samples'][0].batch_input_shape == (3, 2)
    assert out['data_samples'][0].pad_shape == (3, 2)


def test_stacked_input_and_no_samples():
    preprocessor = DetDataPreprocessor(pad_size_divisor=4)
    out = preprocessor(dict(inputs=torch.zeros(2, 3, 5, 6, dtype=torch.uint8)))
    assert out['inputs'].shape == (2, 3, 8, 8)
    assert out['data_samples'] is None


def test_boxes_pass_through_as_tensors():
    class Boxes:  # stands in for MMDetection's box types
        def __init__(self, tensor):
            self.tensor = tensor

        def __len__(self):
            return len(self.tensor)

    from mmengine.structures import InstanceData
    sample = DetDataSample()
    boxes = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    sample.gt_instances = InstanceData(bboxes=Boxes(boxes), labels=torch.tensor([0]))
    out = DetDataPreprocessor()(dict(inputs=[image(4, 4, (0, 0, 0))], data_samples=[sample]))
    assert torch.equal(out['data_samples'][0].gt_instances.bboxes, boxes)


@pytest.mark.parametrize('kwargs, error', [
    (dict(pad_size_divisor=0), 'pad_size_divisor'),
    (dict(mean=[1, 2, 3]), 'mean and std'),
    (dict(bgr_to_rgb=True, rgb_to_bgr=True), 'bgr_to_rgb'),
])
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        DetDataPreprocessor(**kwargs)


def test_get_pad_shape_is_each_images_size_rounded_up():
    # MMDetection's DetDataPreprocessor._get_pad_shape(data), per image, before stacking.
    preprocessor = DetDataPreprocessor(pad_size_divisor=10)
    data = dict(inputs=[torch.zeros(3, 10, 16), torch.zeros(3, 15, 21)])
    assert preprocessor._get_pad_shape(data) == [(10, 20), (20, 30)]
    assert preprocessor._get_pad_shape(dict(inputs=torch.zeros(2, 3, 52, 65))) == [(60, 70)] * 2
    with pytest.raises(AssertionError, match='inputs'):
        preprocessor._get_pad_shape(dict(inputs=torch.zeros(3, 5, 5)))


def test_pad_gt_sem_seg_and_masks_pad_to_the_batch_shape():
    from mmengine.structures import InstanceData, PixelData

    from detlab.structures import BitmapMasks
    sample = DetDataSample(metainfo=dict(batch_input_shape=(4, 6)))
    sample.gt_sem_seg = PixelData(sem_seg=torch.ones(1, 2, 3, dtype=torch.uint8))
    sample.gt_instances = InstanceData(masks=BitmapMasks(np.ones((1, 2, 3), np.uint8), 2, 3))
    preprocessor = DetDataPreprocessor(seg_pad_value=7, mask_pad_value=0)
    preprocessor.pad_gt_sem_seg(batch_data_samples=[sample])  # MMDetection's parameter name
    preprocessor.pad_gt_masks(batch_data_samples=[sample])
    sem_seg = sample.gt_sem_seg.sem_seg
    assert sem_seg.shape == (1, 4, 6) and sem_seg.sum() == 6 + 7 * (24 - 6)
    assert sample.gt_instances.masks.masks.shape == (1, 4, 6)
    assert sample.gt_instances.masks.masks.sum() == 6
