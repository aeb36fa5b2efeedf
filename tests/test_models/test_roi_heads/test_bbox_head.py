"""BBoxHead / Shared2FCBBoxHead: layout, targets, losses and post-processing by hand."""
import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from detlab.models.roi_heads import BBoxHead, Shared2FCBBoxHead
from detlab.models.task_modules import AssignResult, SamplingResult
from detlab.registry import MODELS


def shared2fc(**kwargs):
    cfg = dict(type='Shared2FCBBoxHead', in_channels=4, fc_out_channels=8, roi_feat_size=3,
               num_classes=3, bbox_coder=dict(type='DeltaXYWHBBoxCoder',
                                              target_means=[0., 0., 0., 0.],
                                              target_stds=[0.1, 0.1, 0.2, 0.2]),
               reg_class_agnostic=False,
               loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def test_mmdetection_layout_and_state_dict_keys():
    head = MODELS.build(dict(type='Shared2FCBBoxHead', in_channels=256, fc_out_channels=1024,
                             roi_feat_size=7, num_classes=80))
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    # Keys and shapes of MMDetection 3.3's roi_head.bbox_head in faster-rcnn_r50_fpn.
    assert shapes == {
        'fc_cls.weight': (81, 1024), 'fc_cls.bias': (81, ),
        'fc_reg.weight': (320, 1024), 'fc_reg.bias': (320, ),
        'shared_fcs.0.weight': (1024, 12544), 'shared_fcs.0.bias': (1024, ),
        'shared_fcs.1.weight': (1024, 1024), 'shared_fcs.1.bias': (1024, )}
    assert list(head.state_dict())[:2] == ['fc_cls.weight', 'fc_cls.bias']
    init_types = [cfg['type'] for cfg in head.init_cfg]
    assert init_types == ['Normal', 'Normal', 'Xavier']


def test_forward_shapes_and_class_agnostic_regression():
    x = torch.randn(5, 4, 3, 3)
    cls_score, bbox_pred = shared2fc()(x)
    assert cls_score.shape == (5, 4) and bbox_pred.shape == (5, 12)
    _, bbox_pred = shared2fc(reg_class_agnostic=True)(x)
    assert bbox_pred.shape == (5, 4)
    cls_score, bbox_pred = shared2fc()(torch.zeros(0, 4, 3, 3))
    assert cls_score.shape == (0, 4) and bbox_pred.shape == (0, 12)
    plain = BBoxHead(with_avg_pool=True, in_channels=4, roi_feat_size=3, num_classes=3)
    assert plain(x)[0].shape == (5, 4)


def sampling(pos_priors, pos_gt, pos_labels, neg_priors):
    priors = torch.cat([pos_priors, neg_priors])
    num_pos = len(pos_priors)
    gt_inds = torch.cat([torch.arange(1, num_pos + 1), torch.zeros(len(neg_priors))]).long()
    labels = torch.cat([pos_labels, torch.full((len(neg_priors), ), -1)]).long()
    result = AssignResult(num_pos, gt_inds, torch.ones(len(priors)), labels)
    return SamplingResult(torch.arange(num_pos), torch.arange(num_pos, len(priors)), priors,
                          pos_gt, result, priors.new_zeros(len(priors), dtype=torch.uint8))


def test_targets_and_losses_match_their_formulas():
    head = shared2fc()
    res1 = sampling(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[1., 1., 11., 12.]]),
                    torch.tensor([2]), torch.tensor([[20., 20., 30., 30.], [5., 5., 9., 9.]]))
    res2 = sampling(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0).long(),
                    torch.tensor([[0., 0., 4., 4.]]))
    targets = head.get_targets([res1, res2], dict(pos_weight=-1))
    assert targets.labels.tolist() == [2, 3, 3, 3]  # 3 = background
    assert targets.label_weights.tolist() == [1., 1., 1., 1.]
    # (dx, dy, dw, dh) / stds for prior [0, 0, 10, 10] -> gt [1, 1, 11, 12].
    expected = torch.tensor([1 / 10 / 0.1, 1.5 / 10 / 0.1, 0. / 0.2,
                             torch.log(torch.tensor(1.1)) / 0.2])
    assert torch.allclose(targets.bbox_targets[0], expected, atol=1e-6)
    assert targets.bbox_weights.tolist() == [[1.] * 4] + [[0.] * 4] * 3
    assert head.get_targets([res1], dict(pos_weight=2.0)).label_weights.tolist() == [2., 1., 1.]

    cls_score = torch.randn(4, 4, requires_grad=True)
    bbox_pred = torch.randn(4, 12, requires_grad=True)
    losses = head.loss_and_target(cls_score, bbox_pred, torch.zeros(4, 5), [res1, res2],
                                  dict(pos_weight=-1))['loss_bbox']
    assert torch.allclose(losses['loss_cls'], F.cross_entropy(cls_score, targets.labels))
    # L1 on the positive's class-2 deltas, averaged over all 4 sampled RoIs.
    expected_bbox = (bbox_pred[0, 8:12] - expected).abs().sum() / 4
    assert torch.allclose(losses['loss_bbox'], expected_bbox)
    expected_acc = (cls_score.argmax(1) == targets.labels).float().mean() * 100
    assert torch.allclose(losses['acc'], expected_acc.reshape(1))


def test_no_positive_gives_zero_box_loss_that_still_has_a_gradient():
    head = shared2fc()
    res = sampling(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0).long(),
                   torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]]))
    bbox_pred = torch.randn(2, 12, requires_grad=True)
    losses = head.loss_and_target(torch.randn(2, 4), bbox_pred, torch.zeros(2, 5), [res],
                                  dict(pos_weight=-1))['loss_bbox']
    assert losses['loss_bbox'].item() == 0.
    losses['loss_bbox'].backward()
    assert bbox_pred.grad is not None


def test_predict_decodes_per_class_rescales_and_runs_nms():
    head = shared2fc()
    rois = torch.tensor([[0., 10., 10., 50., 50.], [0., 12., 12., 52., 52.],
                         [0., 100., 100., 150., 150.]])
    cls_score = torch.tensor([[0., 5., 0., 0.], [0., 4., 0., 0.], [0., 0., 6., 0.]])
    bbox_pred = torch.zeros(3, 12)
    meta = dict(img_shape=(120, 200), scale_factor=(2.0, 2.0))
    cfg = dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)
    result = head.predict_by_feat([rois], [cls_score], [bbox_pred], [meta], cfg,
                                  rescale=True)[0]
    # RoIs 0 and 1 overlap (IoU 0.83) as class 1: only the better one stays. RoI 2 is
    # clipped to the image (h = 120) before rescaling by 1/2.
    assert result.labels.tolist() == [2, 1]
    assert torch.allclose(result.bboxes, torch.tensor([[50., 50., 75., 60.],
                                                       [5., 5., 25., 25.]]))
    probs = F.softmax(cls_score, dim=1)
    assert torch.allclose(result.scores, torch.stack([probs[2, 2], probs[0, 1]]))
    raw = head.predict_by_feat([rois], [cls_score], [bbox_pred], [meta], None)[0]
    assert raw.bboxes.shape == (3, 12) and raw.scores.shape == (3, 4)
    empty = head.predict_by_feat([torch.zeros(0, 5)], [torch.zeros(0, 4)], [torch.zeros(0, 12)],
                                 [meta], cfg)[0]
    assert len(empty) == 0 and empty.bboxes.shape == (0, 4)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match='use_sigmoid=False'):
        shared2fc(loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True))
    with pytest.raises(ValueError, match='hbox'):
        shared2fc(predict_box_type='rbox')
    with pytest.raises(ValueError, match='num_shared_fcs=0'):
        MODELS.build(dict(type='ConvFCBBoxHead', num_shared_fcs=1, num_cls_convs=1,
                          in_channels=4, roi_feat_size=3, num_classes=3))
    assert isinstance(shared2fc(), Shared2FCBBoxHead)


def _losses_and_grads(monkeypatch, head, gathers, results, num_rois):
    """Losses of ``head`` on fixed scores for ``results``, with the box
    loss's positives gathered (the CPU's path) or not (forced), and the
    gradients of their sum with respect to the scores and deltas."""
    import detlab.models.roi_heads.bbox_heads.bbox_head as bbox_head_module
    monkeypatch.setattr(bbox_head_module, 'gathers_positives', lambda tensor: gathers)
    generator = torch.Generator().manual_seed(3)
    cls_score = torch.randn(num_rois, 4, generator=generator).requires_grad_()
    width = 4 if head.reg_class_agnostic else 12
    bbox_pred = (0.3 * torch.randn(num_rois, width, generator=generator)).requires_grad_()
    rois = torch.cat([torch.zeros(num_rois, 1), torch.cat([res.priors for res in results])], 1)
    losses = head.loss_and_target(cls_score, bbox_pred, rois, results,
                                  dict(pos_weight=-1))['loss_bbox']
    grads = torch.autograd.grad(losses['loss_cls'] + losses['loss_bbox'], [cls_score, bbox_pred])
    return {name: value.detach() for name, value in losses.items()}, grads


@pytest.mark.parametrize('head_kwargs', [
    dict(),
    dict(reg_class_agnostic=True),
    dict(reg_decoded_bbox=True, loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
    dict(loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))])
def test_box_loss_over_every_roi_equals_the_gathered_one(monkeypatch, head_kwargs):
    """Off the CPU the box loss runs over every RoI with zero weight off the
    positives: the gathered loss's value (1e-6) and gradients (1e-5)."""
    head = shared2fc(**head_kwargs)
    res1 = sampling(torch.tensor([[0., 0., 10., 10.], [30., 30., 50., 45.]]),
                    torch.tensor([[1., 1., 11., 12.], [28., 31., 52., 44.]]),
                    torch.tensor([2, 0]), torch.tensor([[20., 20., 30., 30.], [5., 5., 9., 9.]]))
    res2 = sampling(torch.tensor([[3., 4., 20., 30.]]), torch.tensor([[2., 5., 22., 28.]]),
                    torch.tensor([1]), torch.tensor([[0., 0., 4., 4.]]))
    empty = sampling(torch.zeros(0, 4), torch.zeros(0, 4), torch.zeros(0).long(),
                     torch.tensor([[0., 0., 4., 4.], [1., 1., 5., 5.]]))
    for results, num_rois in (([res1, res2], 6), ([empty], 2)):
        gathered, gathered_grads = _losses_and_grads(monkeypatch, head, True, results, num_rois)
        dense, dense_grads = _losses_and_grads(monkeypatch, head, False, results, num_rois)
        assert set(dense) == set(gathered)
        for name, value in gathered.items():
            assert torch.allclose(dense[name], value, rtol=1e-6, atol=1e-7), name
        for gathered_grad, dense_grad in zip(gathered_grads, dense_grads):
            assert torch.allclose(dense_grad, gathered_grad, rtol=1e-5, atol=1e-8)
    assert dense['loss_bbox'].item() == 0.


def test_loss_off_the_cpu_runs_no_syncing_op(monkeypatch):
    import sys

    import detlab.models.roi_heads.bbox_heads.bbox_head as bbox_head_module
    from helpers import record_syncing_ops
    monkeypatch.setattr(bbox_head_module, 'gathers_positives', lambda tensor: False)
    # The losses' early exit for all-zero weights reads them back on the CPU only.
    monkeypatch.setattr(sys.modules['detlab.models.losses.smooth_l1_loss'], 'weights_all_zero',
                        lambda weight: False)
    head = shared2fc()
    res = sampling(torch.tensor([[0., 0., 10., 10.]]), torch.tensor([[1., 1., 11., 12.]]),
                   torch.tensor([2]), torch.tensor([[20., 20., 30., 30.]]))
    cls_score, bbox_pred = torch.randn(2, 4), torch.randn(2, 12)
    targets = head.get_targets([res], dict(pos_weight=-1))
    with record_syncing_ops() as ops:
        losses = head.loss(cls_score, bbox_pred, torch.zeros(2, 5), targets.labels,
                           targets.label_weights, targets.bbox_targets, targets.bbox_weights)
    assert not ops.syncing
    assert set(losses) == {'loss_cls', 'acc', 'loss_bbox'} and losses['loss_bbox'] > 0
