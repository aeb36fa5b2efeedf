"""BaseDenseHead: every dense head decodes, filters, runs NMS and rescales
through one path, and ``max_per_img=-1`` keeps every box that survives NMS."""
import pytest
import torch
from mmengine.structures import InstanceData

from dense_head_cases import ATSS_CFG, FCOS_CFG, METAS, fill_params, make_feats
from detlab.models.dense_heads import (AnchorHead, ATSSHead, BaseDenseHead, FCOSHead,
                                       RetinaHead, RPNHead)
from detlab.models.layers.bbox_nms import batched_nms
from detlab.registry import MODELS

# Every candidate kept before NMS, so that NMS alone decides what survives.
TEST_CFG = dict(nms_pre=-1, min_bbox_size=0, score_thr=0.0,
                nms=dict(type='nms', iou_threshold=0.5), max_per_img=-1)
ANCHORS = dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
               ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32])
HEAD_CFGS = {
    'AnchorHead': dict(type='AnchorHead', num_classes=4, in_channels=8, feat_channels=8,
                       anchor_generator=ANCHORS),
    'RetinaHead': dict(type='RetinaHead', num_classes=4, in_channels=8, feat_channels=8,
                       stacked_convs=1, anchor_generator=ANCHORS),
    'FCOSHead': FCOS_CFG,
    'ATSSHead': ATSS_CFG,
    'RPNHead': dict(type='RPNHead', in_channels=8, feat_channels=8, anchor_generator=ANCHORS),
}


def build(name: str, **test_cfg):
    head = MODELS.build(dict(HEAD_CFGS[name], test_cfg=dict(TEST_CFG, **test_cfg)))
    fill_params(head)
    return head.eval()


def predict(head, **kwargs):
    with torch.no_grad():
        return head.predict_by_feat(*head(make_feats()), batch_img_metas=METAS, **kwargs)


@pytest.mark.parametrize('name', list(HEAD_CFGS))
def test_max_per_img_minus_one_keeps_every_box_that_survives_nms(name):
    head = build(name)
    keep_all = predict(head)
    unlimited = predict(head, cfg=dict(TEST_CFG, max_per_img=10 ** 6))
    for result, reference in zip(keep_all, unlimited):
        assert len(result) > 2
        assert len(result) == len(reference)
        assert torch.equal(result.bboxes, reference.bboxes)
        assert torch.equal(result.scores, reference.scores)
    cut = predict(head, cfg=dict(TEST_CFG, max_per_img=len(keep_all[0]) - 1))[0]
    assert len(cut) == len(keep_all[0]) - 1


@pytest.mark.parametrize('name', ['AnchorHead', 'RetinaHead', 'FCOSHead', 'ATSSHead'])
def test_nms_survivors_are_those_of_nms_on_the_unsuppressed_candidates(name):
    head = build(name)
    candidates = predict(head, with_nms=False)[0]
    dets, _ = batched_nms(candidates.bboxes, candidates.scores, candidates.labels,
                          TEST_CFG['nms'])
    result = predict(head)[0]
    assert len(result) == len(dets) <= len(candidates)
    assert torch.allclose(result.scores, dets[:, -1])
    assert torch.allclose(result.bboxes, dets[:, :4])


def test_every_head_uses_the_one_decode_and_nms_path():
    for head_type in (AnchorHead, RetinaHead, FCOSHead, ATSSHead, RPNHead):
        assert issubclass(head_type, BaseDenseHead)
        assert head_type.predict_by_feat is BaseDenseHead.predict_by_feat
    for head_type in (AnchorHead, RetinaHead, FCOSHead, ATSSHead):
        assert head_type._predict_by_feat_single is BaseDenseHead._predict_by_feat_single
        assert head_type._bbox_post_process is BaseDenseHead._bbox_post_process
    # ATSSHead is an AnchorHead whose prediction is the base's; no mixin order involved.
    assert ATSSHead.__bases__ == (AnchorHead, )


def test_rescale_divides_by_the_scale_factor_of_each_image():
    head = build('RetinaHead')
    plain = predict(head)
    scaled = predict(head, rescale=True)
    for result, original, meta in zip(plain, scaled, METAS):
        scale_w, scale_h = meta['scale_factor']
        factor = torch.tensor([scale_w, scale_h, scale_w, scale_h])
        assert torch.allclose(original.bboxes * factor, result.bboxes, atol=1e-4)


def test_softmax_classifier_drops_the_background_channel():
    head = build('RetinaHead', nms=None, min_bbox_size=-1)
    head.use_sigmoid_cls = False  # the last of the 4 channels is background
    with torch.no_grad():
        cls_scores, bbox_preds = head(make_feats())
    result = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=METAS)[0]
    probabilities = torch.cat([score[0].permute(1, 2, 0).reshape(-1, 4).softmax(-1)[:, :3]
                               for score in cls_scores])
    assert len(result) == probabilities.numel()
    assert result.labels.max() == 2
    assert torch.allclose(result.scores, probabilities.reshape(-1).sort(descending=True).values)


def test_anchor_head_with_a_softmax_classifier_trains_and_predicts_foreground_only():
    head = MODELS.build(dict(HEAD_CFGS['AnchorHead'], test_cfg=TEST_CFG,
                             loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False),
                             train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                                          neg_iou_thr=0.4, min_pos_iou=0),
                                            allowed_border=-1, pos_weight=-1)))
    assert head.cls_out_channels == 5 and head.conv_cls.out_channels == 3 * 5
    outs = head(make_feats())
    gts = [InstanceData(bboxes=torch.tensor([[4., 6., 30., 40.]]), labels=torch.tensor([3])),
           InstanceData(bboxes=torch.tensor([[20., 10., 60., 50.]]), labels=torch.tensor([0]))]
    losses = head.loss_by_feat(*outs, gts, METAS)
    assert all(torch.isfinite(level) for levels in losses.values() for level in levels)
    with torch.no_grad():
        result = head.eval().predict_by_feat(*outs, batch_img_metas=METAS)[0]
    assert len(result) > 0 and result.labels.max() < 4
    with pytest.raises(ValueError, match='use_sigmoid=True'):
        MODELS.build(dict(HEAD_CFGS['RPNHead'], loss_cls=dict(type='CrossEntropyLoss')))


def test_metainfo_in_the_score_factors_place_is_refused_with_the_keyword_to_use():
    head = build('RetinaHead')
    with pytest.raises(TypeError, match='batch_img_metas='):
        head.predict_by_feat(*head(make_feats()), METAS)
    with pytest.raises(ValueError, match='needs batch_img_metas'):
        head.predict_by_feat(*head(make_feats()))


def test_rpn_refuses_to_skip_nms():
    head = build('RPNHead')
    with pytest.raises(ValueError, match='with_nms'):
        predict(head, with_nms=False)
