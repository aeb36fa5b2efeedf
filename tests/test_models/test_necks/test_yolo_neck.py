"""YOLOV3Neck: MMDetection's keys, scale order and errors (outputs:
tests/test_models/test_backbones/test_mmdet_backbone_outputs.py)."""
import pytest
import torch

from detlab.models.necks import YOLOV3Neck


def test_keys_and_coarse_to_fine_outputs():
    neck = YOLOV3Neck(num_scales=3, in_channels=[16, 8, 4], out_channels=[8, 4, 2])
    shapes = {k: tuple(v.shape) for k, v in neck.state_dict().items()}
    assert shapes['detect1.conv1.conv.weight'] == (8, 16, 1, 1)
    assert shapes['detect1.conv2.conv.weight'] == (16, 8, 3, 3)
    assert shapes['conv1.conv.weight'] == (4, 8, 1, 1)
    assert shapes['detect2.conv1.conv.weight'] == (4, 8 + 4, 1, 1)
    assert shapes['detect3.conv5.bn.weight'] == (2, )
    feats = (torch.rand(1, 4, 16, 16), torch.rand(1, 8, 8, 8), torch.rand(1, 16, 4, 4))
    outs = neck.eval()(feats)
    assert [tuple(o.shape) for o in outs] == [(1, 8, 4, 4), (1, 4, 8, 8), (1, 2, 16, 16)]


def test_mismatched_scales_are_named():
    with pytest.raises(ValueError, match='num_scales=3'):
        YOLOV3Neck(num_scales=3, in_channels=[16, 8], out_channels=[8, 4])
    with pytest.raises(ValueError, match='got 2 maps'):
        YOLOV3Neck(num_scales=3, in_channels=[16, 8, 4], out_channels=[8, 4, 2])(
            (torch.rand(1, 8, 8, 8), torch.rand(1, 16, 4, 4)))
