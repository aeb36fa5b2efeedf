"""RPNHead: MMDetection's layout, losses and proposals."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.structures import DetDataSample

TRAIN_CFG = dict(
    assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                  match_low_quality=True, ignore_iof_thr=-1),
    sampler=dict(type='RandomSampler', num=256, pos_fraction=0.5, neg_pos_ub=-1,
                 add_gt_as_proposals=False),
    allowed_border=-1, pos_weight=-1, debug=False)
TEST_CFG = dict(nms_pre=1000, max_per_img=1000, nms=dict(type='nms', iou_threshold=0.7),
                min_bbox_size=0)


def rpn_head(**kwargs):
    cfg = dict(type='RPNHead', in_channels=8, feat_channels=8,
               anchor_generator=dict(type='AnchorGenerator', scales=[8], ratios=[0.5, 1.0, 2.0],
                                     strides=[4, 8]),
               bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                               target_stds=[1.0, 1.0, 1.0, 1.0]),
               loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
               loss_bbox=dict(type='L1Loss', loss_weight=1.0),
               train_cfg=TRAIN_CFG, test_cfg=TEST_CFG)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def sample(boxes):
    data_sample = DetDataSample(metainfo=dict(img_shape=(64, 64), pad_shape=(64, 64),
                                              scale_factor=(2.0, 2.0)))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    data_sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes)).long())
    return data_sample


def feats():
    torch.manual_seed(0)
    return [torch.randn(2, 8, 16, 16), torch.randn(2, 8, 8, 8)]


def test_layout_and_state_dict_keys_as_mmdetection():
    head = rpn_head(in_channels=256, feat_channels=256)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {'rpn_conv.weight': (256, 256, 3, 3), 'rpn_conv.bias': (256, ),
                      'rpn_cls.weight': (3, 256, 1, 1), 'rpn_cls.bias': (3, ),
                      'rpn_reg.weight': (12, 256, 1, 1), 'rpn_reg.bias': (12, )}
    stacked = rpn_head(num_convs=2)
    assert 'rpn_conv.1.conv.weight' in stacked.state_dict()
    with pytest.raises(ValueError, match='num_classes must be 1'):
        rpn_head(num_classes=3)


def test_losses_are_named_for_the_rpn_and_image_without_gt_trains():
    head = rpn_head()
    losses, proposals = head.loss_and_predict(
        feats(), [sample([[8, 8, 40, 40]]), sample([])], proposal_cfg=TEST_CFG)
    assert set(losses) == {'loss_rpn_cls', 'loss_rpn_bbox'}
    assert all(torch.isfinite(level) for levels in losses.values() for level in levels)
    assert len(proposals) == 2 and not proposals[0].bboxes.requires_grad
    (sum(losses['loss_rpn_cls']) + sum(losses['loss_rpn_bbox'])).backward()
    assert head.rpn_cls.weight.grad is not None


def test_proposals_keep_nms_pre_per_level_then_nms_then_max_per_img():
    head = rpn_head()
    cls_scores, bbox_preds = head(feats())
    metas = [sample([]).metainfo] * 2
    cfg = dict(nms_pre=50, max_per_img=30, nms=dict(type='nms', iou_threshold=0.7),
               min_bbox_size=0)
    proposals = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=cfg)
    assert all(len(p) == 30 for p in proposals)
    assert all((p.labels == 0).all() for p in proposals)
    scores = proposals[0].scores
    assert torch.equal(scores, scores.sort(descending=True)[0])
    # Every proposal is among the 50 best anchors of its level.
    best = torch.cat([s[0].reshape(-1).sigmoid().topk(50)[0] for s in cls_scores])
    assert all((best == s).any() for s in scores)
    # Boxes are clipped to the image and, with rescale, divided by scale_factor.
    assert proposals[0].bboxes.min() >= 0 and proposals[0].bboxes.max() <= 64
    rescaled = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=cfg,
                                    rescale=True)
    assert torch.allclose(rescaled[0].bboxes, proposals[0].bboxes / 2)
    # min_bbox_size removes boxes not wider and taller than it.
    big = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas,
                               cfg=dict(cfg, min_bbox_size=40))
    widths = big[0].bboxes[:, 2:] - big[0].bboxes[:, :2]
    assert (widths > 40).all()
    with pytest.raises(ValueError, match='nms'):
        head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas, cfg=dict(nms_pre=10))


@pytest.mark.parametrize('case', ['some_small', 'none_small', 'all_small', 'one_wide'])
def test_small_boxes_suppressed_by_nms_off_the_cpu_equal_filtering_first(monkeypatch, case):
    """Off the CPU (forced) the small proposals are removed by the NMS itself:
    the same boxes, scores and order as removing them first, and no syncing op
    unless a single box survives."""
    from helpers import record_syncing_ops

    from detlab.models.dense_heads import base_dense_head
    generator = torch.Generator().manual_seed(7)
    xy = torch.rand(200, 2, generator=generator) * 100
    wh = torch.rand(200, 2, generator=generator) * 30
    wh = {'some_small': wh, 'none_small': wh + 5.5, 'all_small': wh * 0.1,
          'one_wide': torch.cat([wh[:1] + 5.5, wh[1:] * 0.1])}[case]
    results = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                           scores=torch.rand(200, generator=generator),
                           level_ids=torch.randint(0, 3, (200, ), generator=generator))
    cfg = dict(min_bbox_size=5, nms=dict(type='nms', iou_threshold=0.3), max_per_img=50)
    expected = base_dense_head.small_bboxes_suppressed_by_nms(results.clone(), cfg, 'level_ids')
    monkeypatch.setattr(base_dense_head, 'gathers_positives', lambda tensor: False)
    with record_syncing_ops() as ops:
        kept = base_dense_head.small_bboxes_suppressed_by_nms(results.clone(), cfg, 'level_ids')
    assert torch.equal(kept.bboxes, expected.bboxes) and torch.equal(kept.scores, expected.scores)
    assert torch.equal(kept.level_ids, expected.level_ids)
    assert len(kept) == {'some_small': 50, 'none_small': 50, 'all_small': 0, 'one_wide': 1}[case]
    assert bool(ops.syncing) == (case in ('all_small', 'one_wide'))
