"""DetDataPreprocessor's mask/seg padding and the batch augmentations."""
import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.structures import InstanceData, PixelData

from detlab.models.data_preprocessors import (BatchFixedSizePad, BatchSyncRandomResize,
                                              DetDataPreprocessor)
from detlab.structures import DetDataSample
from detlab.structures.bbox import HorizontalBoxes
from detlab.structures.mask import BitmapMasks


def sample(height, width, boxes=((2., 2, 6, 8),)):
    data_sample = DetDataSample(metainfo=dict(img_shape=(height, width),
                                              pad_shape=(height, width)))
    masks = np.zeros((len(boxes), height, width), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        masks[i, int(y1):int(y2), int(x1):int(x2)] = 1
    data_sample.gt_instances = InstanceData(bboxes=torch.tensor(boxes).reshape(-1, 4),
                                            labels=torch.zeros(len(boxes), dtype=torch.long),
                                            masks=BitmapMasks(masks, height, width))
    data_sample.ignored_instances = InstanceData(bboxes=torch.tensor([[1., 1, 3, 3]]))
    data_sample.gt_sem_seg = PixelData(sem_seg=torch.ones(1, height, width, dtype=torch.uint8))
    return data_sample


def batch(*sizes):
    return dict(inputs=[torch.full((3, h, w), 100, dtype=torch.uint8) for h, w in sizes],
                data_samples=[sample(h, w) for h, w in sizes])


def test_masks_and_seg_padded_to_the_batch_in_training():
    preprocessor = DetDataPreprocessor(pad_size_divisor=8, pad_mask=True, mask_pad_value=0,
                                       pad_seg=True, seg_pad_value=255)
    out = preprocessor(batch((10, 12), (6, 20)), training=True)
    assert out['inputs'].shape == (2, 3, 16, 24)
    for data_sample, area in zip(out['data_samples'], [24, 16]):  # box (2, 2, 6, 8) in 10 / 6 rows
        assert data_sample.gt_instances.masks.masks.shape == (1, 16, 24)
        assert data_sample.gt_instances.masks.areas.tolist() == [area]
        sem_seg = data_sample.gt_sem_seg.sem_seg
        assert sem_seg.shape == (1, 16, 24) and sem_seg[0, -1, -1] == 255
    assert out['data_samples'][1].gt_sem_seg.sem_seg[0, :6, :20].eq(1).all()
    # not in evaluation
    plain = preprocessor(batch((10, 12)), training=False)
    assert plain['data_samples'][0].gt_instances.masks.masks.shape == (1, 10, 12)


def test_box_objects_are_unwrapped_and_non_blocking_is_kept():
    preprocessor = DetDataPreprocessor(non_blocking=True)
    data = batch((4, 4))
    data['data_samples'][0].gt_instances.bboxes = HorizontalBoxes([[0., 0, 1, 1]])
    out = preprocessor(data)
    assert isinstance(out['data_samples'][0].gt_instances.bboxes, torch.Tensor)
    assert preprocessor._non_blocking is True


def test_batch_sync_random_resize_redraws_every_interval():
    MessageHub.get_instance('test_batch_sync_random_resize')
    hub = MessageHub.get_current_instance()
    resize = BatchSyncRandomResize(random_size_range=(64, 96), interval=2, size_divisor=32)
    preprocessor = DetDataPreprocessor(batch_augments=[
        dict(type='BatchSyncRandomResize', random_size_range=(64, 96), interval=2,
             size_divisor=32)])
    assert isinstance(preprocessor.batch_augments[0], BatchSyncRandomResize)
    inputs = torch.zeros(2, 3, 32, 64)
    hub.update_info('iter', 0)
    out, samples = resize(inputs, [sample(32, 64), sample(32, 60)])
    assert out.shape[-2:] == (32, 64)  # the first batch keeps its size
    hub.update_info('iter', 1)  # (1 + 1) % 2 == 0: a new size is drawn after this batch
    resize(inputs, [sample(32, 64)])
    new_h, new_w = resize._input_size
    assert new_h in (64, 96) and new_w == 2 * new_h  # the batch's aspect ratio, 2:1
    out, samples = resize(inputs, [sample(32, 64), sample(32, 60)])
    scale = new_h / 32
    assert out.shape[-2:] == (new_h, new_w)
    assert samples[0].batch_input_shape == (new_h, new_w)
    assert samples[1].img_shape == (int(32 * scale), int(60 * scale))
    assert samples[0].gt_instances.bboxes.tolist() == [[2 * scale, 2 * scale, 6 * scale,
                                                        8 * scale]]
    assert samples[0].ignored_instances.bboxes.tolist() == [[scale, scale, 3 * scale,
                                                             3 * scale]]
    with pytest.raises(ValueError, match='random_size_range'):
        BatchSyncRandomResize(random_size_range=(96, 64))


def test_batch_fixed_size_pad():
    pad = BatchFixedSizePad(size=(16, 20), img_pad_value=7, pad_mask=True, pad_seg=True)
    samples = [sample(10, 12)]
    out, samples = pad(torch.zeros(1, 3, 10, 12), samples)
    assert out.shape == (1, 3, 16, 20) and out[0, 0, 15, 19] == 7 and out[0, 0, 0, 0] == 0
    assert samples[0].batch_input_shape == (16, 20) and samples[0].pad_shape == (16, 20)
    assert samples[0].gt_instances.masks.masks.shape == (1, 16, 20)
    assert samples[0].gt_sem_seg.sem_seg.shape == (1, 16, 20)
    big = torch.zeros(1, 3, 20, 24)
    assert pad(big, None)[0] is big  # already large enough
