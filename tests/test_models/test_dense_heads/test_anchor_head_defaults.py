import inspect

from detlab.models.dense_heads.anchor_head import AnchorHead


def test_default_loss_cls_is_mmdetections_sigmoid_cross_entropy():
    """MMDetection's AnchorHead defaults to sigmoid CE."""
    default = inspect.signature(AnchorHead.__init__).parameters['loss_cls'].default
    assert default == dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)
