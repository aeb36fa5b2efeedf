"""DetDataSample's data fields take only their type, as MMDetection's do."""
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from detlab.structures import DetDataSample

INSTANCE_FIELDS = ['gt_instances', 'pred_instances', 'ignored_instances', 'proposals',
                   'pred_track_instances']
PIXEL_FIELDS = ['gt_sem_seg', 'pred_sem_seg', 'gt_panoptic_seg', 'pred_panoptic_seg']


@pytest.mark.parametrize('field, dtype', [(f, InstanceData) for f in INSTANCE_FIELDS] +
                         [(f, PixelData) for f in PIXEL_FIELDS])
def test_typed_fields_set_get_and_delete(field, dtype):
    sample = DetDataSample()
    value = dtype(metainfo=dict(marker=field))
    setattr(sample, field, value)
    assert field in sample and getattr(sample, field) is value
    assert field in sample.keys()
    delattr(sample, field)
    assert field not in sample
    with pytest.raises(AssertionError, match='should be a'):
        setattr(sample, field, torch.zeros(2, 4))


def test_fields_given_to_the_constructor_are_checked():
    sample = DetDataSample(proposals=InstanceData(bboxes=torch.zeros(1, 4)),
                           metainfo=dict(img_shape=(4, 4)))
    assert sample.proposals.bboxes.shape == (1, 4) and sample.img_shape == (4, 4)
    with pytest.raises(AssertionError):
        DetDataSample(gt_sem_seg=torch.zeros(1, 4, 4))
