"""Under mixed precision, RetinaNet's, ATSS's and FCOS's heads hand the fused focal loss
(CUDA's, forced here on the CPU) their bf16 logits as they are, keeping no fp32 copy of
them for backward; elsewhere they hand the loss an fp32 copy, as before."""
import importlib

import pytest
import torch
from mmengine.structures import InstanceData

from dense_head_cases import ATSS_CFG, FCOS_CFG, METAS, STRIDES, fill_params, make_feats
from detlab.models.losses import FocalLoss
from detlab.registry import MODELS

NUM_CLASSES = 5  # unlike the 4 box columns, so that a logits tensor is told by its shape
FOCAL = dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0)
RETINA_CFG = dict(type='RetinaHead', num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
                  stacked_convs=1, loss_cls=FOCAL,
                  anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                        scales_per_octave=1, ratios=[0.5, 1.0], strides=STRIDES),
                  train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                               neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
                                 sampler=dict(type='PseudoSampler'), allowed_border=-1,
                                 pos_weight=-1))
HEADS = dict(retina=RETINA_CFG, atss=dict(ATSS_CFG, num_classes=NUM_CLASSES, loss_cls=FOCAL),
             fcos=dict(FCOS_CFG, num_classes=NUM_CLASSES, loss_cls=FOCAL))
GTS = [InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.], [20., 10., 70., 50.]]),
                    labels=torch.tensor([0, 4])),
       InstanceData(bboxes=torch.tensor([[10., 8., 50., 44.]]), labels=torch.tensor([2]))]


def losses_grads_and_saved(head, upcasts_logits: bool, monkeypatch) -> tuple:
    """The head's losses on bf16 outputs (fused focal loss forced), their sum's gradients
    with respect to the outputs, and (dtype, shape) of every tensor saved for backward;
    with ``upcasts_logits`` False the loss says it does not upcast (the logits reach it
    in fp32)."""
    focal_loss = importlib.import_module('detlab.models.losses.focal_loss')
    monkeypatch.setattr(focal_loss, 'fused_focal_loss_on', lambda pred: True)
    if not upcasts_logits:
        monkeypatch.setattr(FocalLoss, 'upcasts_logits', lambda self, pred, target: False)
    with torch.no_grad():
        outputs = [[level.to(torch.bfloat16) for level in output]
                   for output in head(make_feats())]
    leaves = [level.requires_grad_() for output in outputs for level in output]
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(
            lambda t: saved.append((t.dtype, tuple(t.shape))) or t, lambda t: t):
        losses = head.loss_by_feat(*outputs, GTS, METAS)
    losses = {name: sum(value) if isinstance(value, (list, tuple)) else value
              for name, value in losses.items()}
    grads = torch.autograd.grad(sum(losses.values()), leaves)
    return losses, grads, saved


def logits_saved(saved, dtype):
    return [shape for saved_dtype, shape in saved
            if saved_dtype == dtype and len(shape) == 2 and shape[1] == NUM_CLASSES]


@pytest.mark.parametrize('name', HEADS)
def test_fused_focal_loss_gets_bf16_logits_with_no_fp32_copy_kept(monkeypatch, name):
    head = MODELS.build(HEADS[name])
    fill_params(head)
    losses, grads, saved = losses_grads_and_saved(head, True, monkeypatch)
    fp32_losses, fp32_grads, fp32_saved = losses_grads_and_saved(head, False, monkeypatch)
    # The fused loss upcasts the logits itself: the same losses and gradients, exactly.
    assert set(losses) == set(fp32_losses)
    for key, value in losses.items():
        assert value.dtype == torch.float32 and torch.equal(value, fp32_losses[key]), key
    for grad, fp32_grad in zip(grads, fp32_grads):
        assert grad.dtype == torch.bfloat16 and torch.equal(grad, fp32_grad)
    assert losses['loss_cls'] > 0 and grads[0].abs().sum() > 0
    # Kept for backward: the bf16 logits, no fp32 copy of them (which the other way keeps).
    assert logits_saved(saved, torch.bfloat16) and not logits_saved(saved, torch.float32)
    assert logits_saved(fp32_saved, torch.float32)


def test_logits_reach_other_losses_and_the_cpus_focal_loss_in_fp32():
    from detlab.models.utils import logits_for_loss
    logits, labels = torch.randn(6, NUM_CLASSES, dtype=torch.bfloat16), torch.arange(6)
    for loss in (FocalLoss(), MODELS.build(dict(type='CrossEntropyLoss', use_sigmoid=True))):
        upcast = logits_for_loss(loss, logits, labels)
        assert upcast.dtype == torch.float32 and torch.equal(upcast, logits.float())
    fp32 = logits.float()
    assert logits_for_loss(FocalLoss(), fp32, labels) is fp32  # no copy of fp32 logits
