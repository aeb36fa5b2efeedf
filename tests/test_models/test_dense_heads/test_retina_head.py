import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from detlab.registry import MODELS

NUM_CLASSES = 3
IMG = 64


def small_head(**overrides):
    cfg = dict(
        type='RetinaHead', num_classes=NUM_CLASSES, in_channels=8, feat_channels=8,
        stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=1,
                              ratios=[1.0], strides=[8, 16]),
        train_cfg=ConfigDict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                           neg_iou_thr=0.4, min_pos_iou=0, ignore_iof_thr=-1),
                             sampler=dict(type='PseudoSampler'), allowed_border=-1,
                             pos_weight=-1),
        test_cfg=ConfigDict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                            nms=dict(type='nms', iou_threshold=0.5), max_per_img=10))
    cfg.update(overrides)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def feats(batch=1):
    torch.manual_seed(0)
    return [torch.randn(batch, 8, IMG // 8, IMG // 8), torch.randn(batch, 8, IMG // 16, IMG // 16)]


def meta(scale=1.0):
    return dict(img_shape=(IMG, IMG), pad_shape=(IMG, IMG), scale_factor=(scale, scale))


def test_forward_shapes_and_state_dict_keys():
    head = small_head()
    cls_scores, bbox_preds = head(feats(batch=2))
    assert [tuple(c.shape) for c in cls_scores] == [(2, NUM_CLASSES, 8, 8), (2, NUM_CLASSES, 4, 4)]
    assert [tuple(b.shape) for b in bbox_preds] == [(2, 4, 8, 8), (2, 4, 4, 4)]
    keys = set(head.state_dict())
    assert {'cls_convs.0.conv.weight', 'reg_convs.0.conv.weight', 'retina_cls.weight',
            'retina_reg.bias'} <= keys


def test_no_tower_convs_predicts_from_the_input_channels():
    head = small_head(stacked_convs=0, feat_channels=16)  # in_channels=8 != feat_channels
    cls_scores, bbox_preds = head(feats(batch=2))
    assert tuple(cls_scores[0].shape) == (2, NUM_CLASSES, 8, 8)
    assert tuple(bbox_preds[1].shape) == (2, 4, 4, 4)
    assert len(head.cls_convs) == 0 and head.retina_cls.in_channels == 8
    with pytest.raises(ValueError, match='stacked_convs'):
        small_head(stacked_convs=-1)


def test_classifier_bias_starts_at_prior_probability():
    head = small_head()
    prob = torch.sigmoid(head.retina_cls.bias)
    assert torch.allclose(prob, torch.full_like(prob, 0.01), atol=1e-4)


def test_loss_without_gt_has_no_box_loss():
    head = small_head()
    cls_scores, bbox_preds = head(feats())
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(cls_scores, bbox_preds, [empty], [meta()])
    assert len(losses['loss_cls']) == len(losses['loss_bbox']) == 2  # one per level
    assert sum(losses['loss_cls']).item() > 0
    assert sum(losses['loss_bbox']).item() == 0


def test_loss_with_gt_trains_towards_the_box():
    head = small_head()
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 24., 24.]]), labels=torch.tensor([1]))
    optimizer = torch.optim.SGD(head.parameters(), lr=0.05)
    x = [f.detach() for f in feats()]
    first = None
    for _ in range(60):
        cls_scores, bbox_preds = head(x)
        losses = head.loss_by_feat(cls_scores, bbox_preds, [gt], [meta()])
        total = sum(losses['loss_cls']) + sum(losses['loss_bbox'])
        first = total.item() if first is None else first
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert sum(losses['loss_bbox']).item() > 0 or total.item() < first
    assert total.item() < 0.5 * first
    head.eval()
    with torch.no_grad():
        result = head.predict_by_feat(*head(x), batch_img_metas=[meta()])[0]
    assert result.labels[0].item() == 1
    iou = __import__('torchvision').ops.box_iou(result.bboxes[:1], gt.bboxes)
    assert iou.item() > 0.5


def test_targets_ignore_anchors_outside_an_images_padded_area():
    head = small_head()
    gt = InstanceData(bboxes=torch.tensor([[0., 0., 16., 16.]]), labels=torch.tensor([0]))
    anchors = torch.cat(head.prior_generator.grid_priors([(8, 8), (4, 4)]))
    small = dict(img_shape=(32, 32), pad_shape=(32, 32), scale_factor=(1., 1.))
    targets = head.get_targets(anchors, [(8, 8), (4, 4)], [gt], [small])
    weights = targets.label_weights[0, :64].reshape(8, 8)
    assert weights[:4, :4].eq(1).all()  # inside the 32 px image: positive or negative
    assert weights[4:, :].eq(0).all() and weights[:, 4:].eq(0).all()
    assert targets.avg_factor >= 1


def test_predict_rescales_to_the_original_image_and_respects_limits():
    head = small_head()
    head.eval()
    with torch.no_grad():
        cls_scores, bbox_preds = head(feats())
        cls_scores = [torch.full_like(c, 3.0) for c in cls_scores]  # every score ~0.95
        plain = head.predict_by_feat(cls_scores, bbox_preds,
                                     batch_img_metas=[meta(scale=2.0)])[0]
        scaled = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=[meta(scale=2.0)],
                                      rescale=True)[0]
    assert len(plain) == 10  # max_per_img
    assert plain.bboxes.min() >= 0 and plain.bboxes.max() <= IMG  # clipped to img_shape
    assert torch.allclose(scaled.bboxes * 2.0, plain.bboxes, atol=1e-4)


def test_predict_with_no_score_above_threshold_is_empty():
    head = small_head()
    cls_scores, bbox_preds = head(feats())
    cls_scores = [torch.full_like(c, -10.0) for c in cls_scores]
    result = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=[meta()])[0]
    assert result.bboxes.shape == (0, 4) and len(result.scores) == 0


def test_softmax_classifier_is_refused_clearly():
    with pytest.raises(ValueError, match='use_sigmoid'):
        small_head(loss_cls=dict(type='FocalLoss', use_sigmoid=False))


def test_half_precision_head_outputs_give_fp32_losses_and_boxes():
    """What --amp feeds the head: low-precision outputs, fp32 priors and targets."""
    head = small_head()
    cls_scores, bbox_preds = head(feats())
    cls_scores = [c.to(torch.bfloat16) for c in cls_scores]
    bbox_preds = [b.to(torch.bfloat16) for b in bbox_preds]
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 24., 24.]]), labels=torch.tensor([1]))
    losses = head.loss_by_feat(cls_scores, bbox_preds, [gt], [meta()])
    assert all(level.dtype == torch.float32 and torch.isfinite(level)
               for levels in losses.values() for level in levels)
    with torch.no_grad():
        result = head.predict_by_feat([torch.full_like(c, 3.0) for c in cls_scores], bbox_preds,
                                      batch_img_metas=[meta()])[0]
    assert result.bboxes.dtype == torch.float32 and len(result) > 0
