"""FCOSHead: MMDetection's layer names, and its losses and detections on fixed weights."""
import pytest
import torch
from mmengine.structures import InstanceData

from dense_head_cases import (FCOS_CFG, FCOS_TRICKS_CFG, GTS, METAS, dense_losses_equal_gathered,
                              fill_params, make_feats, syncing_ops_of_dense_losses)
from detlab.registry import MODELS

EMPTY = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))


def build(cfg=FCOS_CFG, **overrides):
    head = MODELS.build(dict(cfg, **overrides))
    fill_params(head)
    return head


def test_state_dict_keys_are_mmdetections():
    keys = list(build().state_dict())
    tower = [f'{tower}.{i}.{part}' for tower in ('cls_convs', 'reg_convs') for i in range(2)
             for part in ('conv.weight', 'gn.weight', 'gn.bias')]  # no conv bias under GN
    assert keys == tower + ['conv_cls.weight', 'conv_cls.bias', 'conv_reg.weight',
                            'conv_reg.bias', 'conv_centerness.weight', 'conv_centerness.bias',
                            'scales.0.scale', 'scales.1.scale', 'scales.2.scale']


# Measured with MMDetection 3.3's FCOSHead on the same weights and features
# (dense_head_cases.py); detlab's agree to ~1e-7.
MMDET_LOSSES = {
    'plain': dict(loss_cls=12.277592, loss_bbox=5.203373, loss_centerness=0.690579),
    'tricks': dict(loss_cls=12.277592, loss_bbox=0.990566, loss_centerness=0.670052),
}
MMDET_DETECTIONS = {
    'plain': dict(counts=[20, 20], score_sums=[7.573, 9.59101],
                  first_boxes=[[19.279566, 11.214532, 20.437405, 12.307701],
                               [11.317982, 50.452305, 13.830374, 52.686554]],
                  first_labels=[[2, 3, 3, 3, 3], [3, 3, 3, 3, 3]]),
    'tricks': dict(counts=[20, 20], score_sums=[7.76422, 9.69502],
                   first_boxes=[[6.0, 1.919108, 9.079145, 6.0], [36.0, 33.280605, 39.122547, 44.0]],
                   first_labels=[[3, 3, 1, 3, 3], [2, 2, 2, 2, 3]]),
}
CASES = {'plain': FCOS_CFG, 'tricks': FCOS_TRICKS_CFG}


@pytest.mark.parametrize('case', ['plain', 'tricks'])
def test_losses_equal_mmdetections(case):
    head = build(CASES[case])
    losses = head.loss_by_feat(*head(make_feats()), batch_gt_instances=GTS, batch_img_metas=METAS)
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_centerness'}
    for name, expected in MMDET_LOSSES[case].items():
        assert losses[name].item() == pytest.approx(expected, rel=1e-5), name
    sum(losses.values()).backward()
    assert head.conv_reg.weight.grad.abs().sum() > 0 and head.scales[0].scale.grad is not None


@pytest.mark.parametrize('case', ['plain', 'tricks'])
def test_detections_equal_mmdetections(case):
    head = build(CASES[case]).eval()
    with torch.no_grad():
        results = head.predict_by_feat(*head(make_feats()), batch_img_metas=METAS, rescale=True)
    expected = MMDET_DETECTIONS[case]
    assert [len(r) for r in results] == expected['counts']
    for result, score_sum, box, labels in zip(results, expected['score_sums'],
                                              expected['first_boxes'], expected['first_labels']):
        assert result.scores.sum().item() == pytest.approx(score_sum, rel=1e-5)
        assert result.bboxes[0].tolist() == pytest.approx(box, abs=1e-4)
        assert result.labels[:5].tolist() == labels
        assert torch.all(result.scores[:-1] >= result.scores[1:])


def test_scores_are_class_times_centerness_probabilities():
    head = build(test_cfg=dict(nms_pre=1000, score_thr=0.0, nms=None, max_per_img=-1)).eval()
    cls_scores, bbox_preds, centernesses = head(make_feats())
    results = head.predict_by_feat(cls_scores, bbox_preds, centernesses, batch_img_metas=METAS)
    # Without NMS and threshold every (point, class) pair comes out; their scores are the
    # products of the two sigmoids.
    products = [(c.sigmoid() * s.sigmoid()).permute(0, 2, 3, 1).reshape(2, -1)
                for c, s in zip(cls_scores, centernesses)]
    expected = torch.cat(products, dim=1)[0].sort(descending=True).values
    assert torch.allclose(results[0].scores.sort(descending=True).values, expected)


def test_no_gt_gives_zero_box_losses_and_still_trains_the_classifier():
    head = build()
    losses = head.loss_by_feat(*head(make_feats()), batch_gt_instances=[EMPTY, EMPTY],
                               batch_img_metas=METAS)
    assert losses['loss_bbox'].item() == 0 and losses['loss_centerness'].item() == 0
    assert losses['loss_cls'].item() > 0
    sum(losses.values()).backward()
    assert head.conv_cls.weight.grad.abs().sum() > 0


def test_norm_on_bbox_regresses_in_strides_and_predicts_in_pixels():
    head = build(FCOS_TRICKS_CFG)
    feats = make_feats()
    train_preds = head(feats)[1]
    head.eval()
    eval_preds = head(feats)[1]
    for stride, train_pred, eval_pred in zip([8, 16, 32], train_preds, eval_preds):
        assert train_pred.min() >= 0
        assert torch.allclose(eval_pred, train_pred * stride)
    # norm_on_bbox also divides the targets by the stride.
    points = head.prior_generator.grid_priors([(8, 10), (4, 5), (2, 3)])
    plain = build().get_targets(points, GTS).bbox_targets
    normed = head.get_targets(points, GTS).bbox_targets
    assert torch.allclose(normed[:, :80] * 8, plain[:, :80])


def test_centerness_branch_follows_centerness_on_reg():
    head = build()
    feats = make_feats()[:1]
    cls_feat = head.cls_convs(feats[0])
    assert torch.allclose(head(feats)[2][0], head.conv_centerness(cls_feat))
    head_on_reg = build(centerness_on_reg=True)
    reg_feat = head_on_reg.reg_convs(feats[0])
    assert torch.allclose(head_on_reg(feats)[2][0], head_on_reg.conv_centerness(reg_feat))


def test_pre_v2_predictor_keys_load():
    head = build()
    state = {key.replace('conv_cls', 'fcos_cls').replace('conv_centerness', 'fcos_centerness'): v
             for key, v in head.state_dict().items()}
    other = MODELS.build(FCOS_CFG)
    other.load_state_dict(state, strict=True)  # a plain dict carries no version
    assert torch.equal(other.conv_cls.weight, head.conv_cls.weight)


def test_dcn_on_last_conv_makes_the_last_tower_convs_mmcvs_dcnv2():
    head = MODELS.build(dict(FCOS_CFG, dcn_on_last_conv=True))
    last = len(head.cls_convs) - 1
    for tower in ('cls_convs', 'reg_convs'):
        keys = {k for k in head.state_dict() if k.startswith(f'{tower}.')}
        assert {f'{tower}.{last}.conv.conv_offset.weight',
                f'{tower}.{last}.conv.conv_offset.bias'} <= keys
        assert not any('conv_offset' in k for k in keys if not k.startswith(f'{tower}.{last}.'))
    conv = head.cls_convs[last].conv
    assert tuple(conv.conv_offset.weight.shape) == (27, conv.in_channels, 3, 3)
    # mmcv's init leaves the offset conv at zero: no offsets and masks of sigmoid(0) = 0.5
    # on the sampled input, so the deformable conv is the plain one at half the input.
    x = torch.rand(1, conv.in_channels, 6, 7)
    plain = torch.nn.functional.conv2d(0.5 * x, conv.weight, conv.bias, padding=1)
    torch.testing.assert_close(conv(x), plain)


def test_unsupported_settings_are_refused_by_name():
    with pytest.raises(ValueError, match='cls_predictor_cfg'):
        MODELS.build(dict(FCOS_CFG, cls_predictor_cfg=dict(type='NormedConv2d')))
    with pytest.raises(ValueError, match='regress_ranges'):
        MODELS.build(dict(FCOS_CFG, regress_ranges=((-1, 64), (64, 1e8))))
    with pytest.raises(ValueError, match='use_sigmoid'):
        MODELS.build(dict(FCOS_CFG, loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False)))


# Per output (cls, bbox, centerness; two levels) the sum of absolute values MMDetection 3.3's
# FCOSHead gives with dcn_on_last_conv=True, measured by tools/dev/measure_fcos_dcn_head.py.
MMDET_DCN_HEAD_SUMS = [[496.8696594238281, 112.69525909423828],
                       [103.29574584960938, 92.12755584716797],
                       [146.97109985351562, 26.85862159729004]]


def test_dcn_on_last_conv_head_gives_mmdetections_outputs():
    from helpers import fill_seeded_weights
    head = MODELS.build(dict(
        type='FCOSHead', num_classes=5, in_channels=16, feat_channels=16, stacked_convs=2,
        strides=[8, 16], regress_ranges=((-1, 64), (64, 1e8)), dcn_on_last_conv=True,
        norm_cfg=dict(type='GN', num_groups=4), norm_on_bbox=True, centerness_on_reg=True))
    fill_seeded_weights(head)
    assert head.cls_convs[1].conv.conv_offset.weight.abs().sum() > 0  # real offsets
    generator = torch.Generator().manual_seed(1)
    feats = [torch.rand(1, 16, 12, 10, generator=generator),
             torch.rand(1, 16, 6, 5, generator=generator)]
    with torch.no_grad():
        outputs = head.eval()(feats)
    sums = [float(level.abs().sum()) for output in outputs for level in output]
    assert sums == pytest.approx(sum(MMDET_DCN_HEAD_SUMS, []), rel=1e-5)


@pytest.mark.parametrize('cfg', [FCOS_CFG, FCOS_TRICKS_CFG])
@pytest.mark.parametrize('gts', ['boxes', 'none'])
def test_losses_without_gathering_positives_equal_the_gathered_ones(monkeypatch, cfg, gts):
    # Off the CPU the box and centerness losses run over every point with zero weight off
    # the positives; forced here on the CPU, they agree with the gathered ones.
    gts = GTS if gts == 'boxes' else [EMPTY, EMPTY]
    dense = dense_losses_equal_gathered(monkeypatch, build(cfg), gts, METAS)
    assert (dense['loss_bbox'] > 0) == (gts is GTS)


@pytest.mark.parametrize('cfg', [FCOS_CFG, FCOS_TRICKS_CFG])
def test_dense_losses_run_no_syncing_op(monkeypatch, cfg):
    assert not syncing_ops_of_dense_losses(monkeypatch, build(cfg), GTS, METAS)
