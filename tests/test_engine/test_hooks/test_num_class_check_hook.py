"""NumClassCheckHook: two-stage configs pass, mismatches stop, class-less datasets warn."""
from types import SimpleNamespace

import pytest
from torch import nn

from detlab.engine.hooks import NumClassCheckHook
from detlab.models.dense_heads import RPNHead

CLASSES = ('circle', 'rectangle', 'triangle')


class Head(nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes


def rpn_head():
    return RPNHead(in_channels=4, feat_channels=4, anchor_generator=dict(
        type='AnchorGenerator', scales=[8], ratios=[1.0], strides=[4]),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True),
        loss_bbox=dict(type='L1Loss'))


def runner(model, classes, warnings=None):
    dataset = SimpleNamespace(metainfo={} if classes is None else dict(classes=classes))
    logger = SimpleNamespace(warning=lambda message: warnings.append(message))
    loader = SimpleNamespace(dataset=dataset)
    return SimpleNamespace(model=model, train_dataloader=loader, val_dataloader=loader,
                           logger=logger)


def two_stage(num_classes=3):
    model = nn.Module()
    model.rpn_head = rpn_head()  # num_classes 1: objectness
    model.roi_head = nn.Module()
    model.roi_head.bbox_head = Head(num_classes)
    return model


def test_two_stage_model_with_one_class_rpn_head_passes():
    warnings = []
    hook = NumClassCheckHook()
    assert hook.before_train(runner(two_stage(), CLASSES, warnings)) is None
    assert hook.before_val_epoch(runner(two_stage(), CLASSES, warnings)) is None
    assert warnings == []
    # A one-class head that is not an RPN head is checked and stops training.
    model = two_stage()
    model.extra_head = Head(1)
    with pytest.raises(ValueError, match=r'model.extra_head.num_classes = 1'):
        hook.before_train(runner(model, CLASSES))


def test_rpn_detector_head_is_not_checked_either():
    model = nn.Module()
    model.bbox_head = rpn_head()  # MMDetection's RPN stores its RPNHead as bbox_head
    warnings = []
    assert NumClassCheckHook().before_train(runner(model, CLASSES, warnings)) is None
    assert warnings == []
    # A plain one-class head in the same place is a mismatch.
    model.bbox_head = Head(1)
    with pytest.raises(ValueError, match=r'model.bbox_head.num_classes = 1'):
        NumClassCheckHook().before_train(runner(model, CLASSES))


def test_roi_head_mismatch_still_stops_training():
    with pytest.raises(ValueError, match=r'model.roi_head.bbox_head.num_classes = 80'):
        NumClassCheckHook().before_train(runner(two_stage(80), CLASSES))


def test_dataset_without_classes_warns():
    warnings = []
    NumClassCheckHook().before_train(runner(two_stage(), None, warnings))
    assert len(warnings) == 1 and '`classes`' in warnings[0]
    assert 'SimpleNamespace' in warnings[0]


def test_single_string_classes_are_refused():
    with pytest.raises(TypeError, match="classes=\\('circle',\\)"):
        NumClassCheckHook().before_train(runner(two_stage(1), 'circle'))
