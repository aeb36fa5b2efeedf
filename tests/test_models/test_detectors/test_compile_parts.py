"""The config key ``compile``: which parts it compiles, its errors, and that the small
families' backbones, necks and dense heads trace into one graph each (no graph break) and
compute eager mode's numbers. Dynamo runs with the ``eager``/``aot_eager`` backends: no code
generation, so each case takes about a second."""
import pytest
import torch
import torch._dynamo
from torch._dynamo.testing import CompileCounterWithBackend

from detlab.models.detectors.compile_parts import (COMPILE_PARTS, compile_detector,
                                                   compile_targets)
from detlab.registry import MODELS
from detlab.utils import register_all_modules

register_all_modules()

RESNET_FPN = (dict(type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3),
                   norm_eval=False, init_cfg=None),
              dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5,
                   start_level=1, add_extra_convs='on_input'))
CSPNEXT_PAFPN = (dict(type='CSPNeXt', deepen_factor=0.167, widen_factor=0.125),
                 dict(type='CSPNeXtPAFPN', in_channels=[32, 64, 128], out_channels=16,
                      num_csp_blocks=1))
SWIN_FPN = (dict(type='SwinTransformer', embed_dims=16, depths=(1, 1, 1, 1),
                 num_heads=(1, 1, 2, 2), window_size=4),
            dict(type='FPN', in_channels=[16, 32, 64, 128], out_channels=16, num_outs=4))
# One ResNet stage, two FPN levels, one conv per head tower: the smallest RetinaNet, as
# tracing takes time in proportion to the number of modules.
SMALL_RESNET_FPN = (dict(type='ResNet', depth=18, base_channels=8, num_stages=1,
                         strides=(1, ), dilations=(1, ), out_indices=(0, ), norm_eval=False,
                         init_cfg=None),
                    dict(type='FPN', in_channels=[8], out_channels=16, num_outs=2,
                         add_extra_convs='on_input'))
RETINA_HEAD = dict(type='RetinaHead', num_classes=3, in_channels=16, feat_channels=16,
                   stacked_convs=1,
                   anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                         scales_per_octave=3, ratios=[0.5, 1.0, 2.0],
                                         strides=[4, 8]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                   target_stds=[1.0, 1.0, 1.0, 1.0]),
                   loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                                 loss_weight=1.0),
                   loss_bbox=dict(type='L1Loss', loss_weight=1.0))


def tiny_retinanet() -> torch.nn.Module:
    backbone, neck = SMALL_RESNET_FPN
    torch.manual_seed(0)
    return MODELS.build(dict(type='RetinaNet', backbone=backbone, neck=neck,
                             bbox_head=RETINA_HEAD, train_cfg=None, test_cfg=None))


def graph_count(module: torch.nn.Module, *inputs) -> int:
    """Graphs dynamo makes of one call of ``module``; fails on any graph break."""
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(module)(*inputs)
    assert explanation.graph_break_count == 0, [
        (reason.reason, reason.user_stack[-1:]) for reason in explanation.break_reasons]
    return explanation.graph_count


@pytest.mark.parametrize('part', ['backbone', 'neck'])
@pytest.mark.parametrize('parts', [RESNET_FPN, CSPNEXT_PAFPN, SWIN_FPN],
                         ids=['resnet_fpn', 'cspnext_pafpn', 'swin_fpn'])
def test_backbone_and_neck_trace_into_one_graph_each(parts, part):
    torch.manual_seed(0)
    backbone, neck = (MODELS.build(cfg).train() for cfg in parts)
    images = torch.randn(1, 3, 64, 64)
    if part == 'backbone':
        assert graph_count(backbone, images) == 1
    else:
        assert graph_count(neck, backbone(images)) == 1


def test_dense_head_forward_traces_into_one_graph():
    model = tiny_retinanet().train()
    features = model.neck(model.backbone(torch.randn(1, 3, 32, 32)))
    assert graph_count(model.bbox_head, features) == 1


def outputs_and_grads(model: torch.nn.Module, images: torch.Tensor):
    model.zero_grad(set_to_none=True)
    cls_scores, bbox_preds = model.bbox_head(model.neck(model.backbone(images)))
    sum(score.square().sum() + pred.sum() for score, pred in zip(cls_scores, bbox_preds)) \
        .backward()
    grads = [parameter.grad.clone() for parameter in model.parameters()]
    return [*cls_scores, *bbox_preds], grads


def test_compiled_head_computes_eager_numbers_forward_and_backward():
    """The dense head compiled through AOTAutograd (forward and backward graphs): the same
    outputs and gradients as eager mode, and a second call on the same shapes compiles
    nothing more. (The backbone and neck through a Runner: test_run_options.py.)"""
    torch._dynamo.reset()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    eager = tiny_retinanet().train()
    compiled = tiny_retinanet().train()
    counter = CompileCounterWithBackend('aot_eager')
    assert compile_detector(compiled, dict(parts=['head'], backend=counter)) == ['head']
    assert compiled.backbone._compiled_call_impl is None
    expected_outputs, expected_grads = outputs_and_grads(eager, images)
    outputs, grads = outputs_and_grads(compiled, images)
    assert counter.frame_count == 1  # one graph: the options reached torch.compile
    torch.testing.assert_close(outputs, expected_outputs, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads, expected_grads, rtol=1e-5, atol=1e-6)
    outputs_and_grads(compiled, images)
    assert counter.frame_count == 1  # no recompile
    # compiled in place: the state_dict keys are the model's own
    assert list(compiled.state_dict()) == list(eager.state_dict())


def test_compile_true_compiles_backbone_and_neck_only():
    model = tiny_retinanet()
    assert compile_detector(model, True) == ['backbone', 'neck']
    assert model.backbone._compiled_call_impl is not None
    assert model.neck._compiled_call_impl is not None
    assert model.bbox_head._compiled_call_impl is None
    assert compile_detector(tiny_retinanet(), None) == []
    assert compile_detector(tiny_retinanet(), False) == []


def test_head_is_the_dense_head_and_missing_parts_are_named():
    model = tiny_retinanet()
    assert compile_targets(model, ['head']) == dict(head=model.bbox_head)
    assert set(COMPILE_PARTS) == {'backbone', 'neck', 'head'}
    no_neck = torch.nn.Module()
    no_neck.backbone = torch.nn.Conv2d(3, 3, 1)
    assert compile_detector(no_neck, True) == ['backbone']  # compile=True: what is there
    with pytest.raises(ValueError, match=r"Module has no neck or head to compile"):
        compile_detector(no_neck, dict(parts=['backbone', 'neck', 'head']))


@pytest.mark.parametrize('setting, error, match', [
    (dict(parts=['backbone', 'heads']), ValueError,
     r"unknown part\(s\) \['heads'\].*valid parts are \('backbone', 'neck', 'head'\)"),
    (dict(parts='backbone'), TypeError, 'parts must be a list of part names'),
    (dict(parts=[]), ValueError, 'parts is empty'),
    ('max-autotune', TypeError, 'compile must be True, False or a dict'),
])
def test_bad_compile_settings_are_refused(setting, error, match):
    with pytest.raises(error, match=match):
        compile_detector(tiny_retinanet(), setting)
