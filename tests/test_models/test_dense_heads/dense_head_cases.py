"""Small deterministic FCOS/ATSS/RTMDet(-Ins) head cases shared by the head tests.

Weights and features come from closed-form formulas (no RNG), so MMDetection 3.3
can be given exactly the same ones: the numbers the tests pin were measured by
running these cases through MMDetection's heads.
"""
import math
import sys

import torch
from mmengine.structures import InstanceData

STRIDES = [8, 16, 32]
FEAT_SIZES = [(8, 10), (4, 5), (2, 3)]
TEST_CFG = dict(nms_pre=50, min_bbox_size=0, score_thr=0.05,
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=20)
FCOS_CFG = dict(type='FCOSHead', num_classes=4, in_channels=8, feat_channels=8, stacked_convs=2,
                strides=STRIDES, regress_ranges=((-1, 24), (24, 48), (48, 1e8)),
                norm_cfg=dict(type='GN', num_groups=4, requires_grad=True), test_cfg=TEST_CFG)
FCOS_TRICKS_CFG = dict(FCOS_CFG, norm_on_bbox=True, centerness_on_reg=True, center_sampling=True,
                       center_sample_radius=1.5, loss_bbox=dict(type='GIoULoss', loss_weight=1.0))
ATSS_CFG = dict(type='ATSSHead', num_classes=4, in_channels=8, feat_channels=8, stacked_convs=2,
                norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
                anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=4,
                                      scales_per_octave=1, strides=STRIDES),
                bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.0] * 4,
                                target_stds=[0.1, 0.1, 0.2, 0.2]),
                loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                               pos_weight=-1, debug=False),
                test_cfg=TEST_CFG)
RTMDET_CFG = dict(type='RTMDetHead', num_classes=4, in_channels=8, feat_channels=8,
                  stacked_convs=2, norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
                  anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=STRIDES),
                  loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0,
                                loss_weight=1.0),
                  loss_bbox=dict(type='GIoULoss', loss_weight=2.0),
                  train_cfg=dict(assigner=dict(type='DynamicSoftLabelAssigner', topk=13),
                                 allowed_border=-1, pos_weight=-1, debug=False))
# Image 0: 80 x 64 with three boxes; image 1: 72 x 56 (its own padding) with none.
GTS = [InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 70., 50.],
                                         [50., 30., 62., 44.]]),
                    labels=torch.tensor([0, 3, 1])),
       InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))]
METAS = [dict(img_shape=(64, 80), pad_shape=(64, 80), scale_factor=(2.0, 2.0)),
         dict(img_shape=(56, 72), pad_shape=(64, 80), scale_factor=(1.0, 1.0))]


def fill_params(module: torch.nn.Module) -> None:
    """Every parameter from a formula of its position, in state_dict order."""
    with torch.no_grad():
        for index, (name, param) in enumerate(module.named_parameters()):
            values = torch.arange(param.numel(), dtype=torch.float32)
            wave = torch.sin(values * 0.37 + index)
            if name.endswith('scale'):
                param.fill_(1.0 + 0.05 * math.sin(index))
            elif 'gn' in name and name.endswith('weight'):
                param.copy_((1.0 + 0.2 * wave).reshape(param.shape))
            elif name.endswith('bias'):
                param.copy_((0.3 * wave).reshape(param.shape))
            else:
                param.copy_((0.15 * wave).reshape(param.shape))


def make_feats(num_levels: int = 3) -> list:
    """(2, 8, h, w) features per level."""
    feats = []
    for level, (h, w) in enumerate(FEAT_SIZES[:num_levels]):
        values = torch.arange(2 * 8 * h * w, dtype=torch.float32)
        feats.append(torch.cos(values * (0.11 + 0.03 * level)).reshape(2, 8, h, w))
    return feats


def losses_gathered_and_dense(monkeypatch, head, gts, metas) -> tuple:
    """The losses of ``head`` on :func:`make_feats` with the positives gathered
    (the CPU's path) and over every prior (the path off the CPU, forced here
    through the head module's ``gathers_positives``), each with the gradient
    of all losses' sum with respect to every output of the head (class
    scores, boxes, and centerness or objectness where the head has them).

    Returns:
        tuple: ``(losses, grads)`` gathered, then ``(losses, grads)`` dense;
        a loss given per level is summed.
    """
    module = sys.modules[type(head).__module__]
    results = []
    for gathers in (True, False):
        monkeypatch.setattr(module, 'gathers_positives', lambda tensor, gathers=gathers: gathers)
        outputs = head(make_feats())
        losses = head.loss_by_feat(*outputs, gts, metas)
        losses = {name: sum(value) if isinstance(value, (list, tuple)) else value
                  for name, value in losses.items()}
        levels = [output if isinstance(output, (list, tuple)) else [output]
                  for output in outputs]  # a single tensor: RTMDet-Ins's mask features
        # Zeros for outputs no loss reads (RTMDet-Ins's kernels without gts).
        grads = torch.autograd.grad(sum(losses.values()),
                                    [level for output in levels for level in output],
                                    materialize_grads=True)
        results.append(({name: value.detach() for name, value in losses.items()}, grads))
    return tuple(results)


def dense_losses_equal_gathered(monkeypatch, head, gts, metas) -> dict:
    """Assert that :func:`losses_gathered_and_dense`'s losses agree to 1e-6
    relative and their gradients to 1e-5; return the dense losses."""
    (gathered, gathered_grads), (dense, dense_grads) = losses_gathered_and_dense(
        monkeypatch, head, gts, metas)
    assert set(dense) == set(gathered)
    for name, value in gathered.items():
        assert torch.allclose(dense[name], value, rtol=1e-6, atol=1e-7), name
    for gathered_grad, dense_grad in zip(gathered_grads, dense_grads):
        assert torch.allclose(dense_grad, gathered_grad, rtol=1e-5, atol=1e-8)
    return dense


def syncing_ops_of_dense_losses(monkeypatch, head, gts, metas) -> set:
    """The syncing ops (``helpers.record_syncing_ops``) of ``head.loss_by_feat``
    on the path taken off the CPU: positives not gathered, an assigner with
    ``can_assign_batch`` assigning the whole batch, the IoU losses without
    their CPU-only all-zero-weights exit, and the class loss on its path off
    the CPU where its module has ``gathers_positives`` (QualityFocalLoss),
    else replaced by a plain sum (FocalLoss checks its labels on the CPU; its
    CUDA kernel does not)."""
    from helpers import record_syncing_ops
    if hasattr(getattr(head, 'assigner', None), 'can_assign_batch'):
        monkeypatch.setattr(head.assigner, 'can_assign_batch', lambda *args: True)
    monkeypatch.setattr(sys.modules[type(head).__module__], 'gathers_positives',
                        lambda tensor: False)
    monkeypatch.setattr(sys.modules['detlab.models.losses.iou_loss'], 'weights_all_zero',
                        lambda weight: False)
    cls_loss_module = sys.modules[type(head.loss_cls).__module__]
    if hasattr(cls_loss_module, 'gathers_positives'):
        monkeypatch.setattr(cls_loss_module, 'gathers_positives', lambda tensor: False)
    else:
        monkeypatch.setattr(head.loss_cls, 'forward',
                            lambda score, *args, **kwargs: score.sum())
    outputs = head(make_feats())
    with record_syncing_ops() as recorder:
        head.loss_by_feat(*outputs, gts, metas)
    assert 'aten.where' in recorder.names
    return recorder.syncing
