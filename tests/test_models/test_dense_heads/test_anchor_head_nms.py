"""AnchorHead's predict honours the whole ``test_cfg.nms``: its type (NMS or
Soft-NMS) and class_agnostic."""
import pytest
import torch
from mmengine.config import ConfigDict

from detlab.registry import MODELS

IMG = 32


def head_with(nms):
    head = MODELS.build(dict(
        type='RetinaHead', num_classes=2, in_channels=4, feat_channels=4, stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=1,
                              ratios=[1.0], strides=[8]),
        test_cfg=ConfigDict(nms_pre=100, min_bbox_size=0, score_thr=0.05, nms=nms,
                            max_per_img=10)))
    return head.eval()


def predict(head, logits):
    """One level of 4x4 cells, 1 anchor each; zero deltas, so every box is its anchor."""
    cls = logits.reshape(1, 4, 4, 2).permute(0, 3, 1, 2)
    deltas = torch.zeros(1, 4, 4, 4)
    meta = dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), scale_factor=(1.0, 1.0))
    return head.predict_by_feat([cls], [deltas], batch_img_metas=[meta])[0]


def logits_at(cells_and_classes):
    logits = torch.full((16, 2), -20.0)
    for (cell, label), value in cells_and_classes.items():
        logits[cell, label] = value
    return logits


def test_class_agnostic_nms_merges_labels_at_one_place():
    logits = logits_at({(5, 0): 3.0, (5, 1): 2.0})
    aware = predict(head_with(dict(type='nms', iou_threshold=0.5)), logits)
    agnostic = predict(head_with(dict(type='nms', iou_threshold=0.5, class_agnostic=True)), logits)
    assert sorted(aware.labels.tolist()) == [0, 1]
    assert agnostic.labels.tolist() == [0]


def test_soft_nms_keeps_neighbour_with_decayed_score():
    # Cells 5 and 6 are horizontal neighbours: 16 px anchors 8 px apart, IoU 1/3.
    logits = logits_at({(5, 0): 3.0, (6, 0): 2.0})
    hard = predict(head_with(dict(type='nms', iou_threshold=0.3)), logits)
    soft = predict(head_with(dict(type='soft_nms', iou_threshold=0.3, min_score=0.05)), logits)
    assert len(hard.scores) == 1
    second = torch.sigmoid(torch.tensor(2.0)).item()
    assert soft.scores.tolist() == pytest.approx(
        [torch.sigmoid(torch.tensor(3.0)).item(), second * (1 - 1 / 3)], rel=1e-5)


def test_unknown_nms_type_is_refused_with_valid_names():
    with pytest.raises(ValueError, match="'fancy_nms'.*'nms', 'soft_nms'"):
        predict(head_with(dict(type='fancy_nms', iou_threshold=0.5)), logits_at({(5, 0): 3.0}))
