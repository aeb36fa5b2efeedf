"""FoveaHead: MMDetection's layer names, and its losses and detections on fixed weights."""
import pytest
import torch
from mmengine.structures import InstanceData

from fovea_cases import CASES, FOVEA_GTS, FOVEA_METAS, fovea_feats
from helpers import fill_seeded_weights
from detlab.registry import MODELS


def build(case='plain', **overrides):
    head = MODELS.build(dict(CASES[case], **overrides))
    fill_seeded_weights(head)
    return head


def test_state_dict_keys_are_mmdetections():
    plain = [f'reg_convs.{i}.conv.{p}' for i in range(2) for p in ('weight', 'bias')]
    assert list(build().state_dict()) == plain + [
        'conv_reg.weight', 'conv_reg.bias',
        *[key.replace('reg_convs', 'cls_convs') for key in plain],
        'conv_cls.weight', 'conv_cls.bias']
    # gn-head-align: no conv bias under GN; the class branch is two ConvModules
    # after FeatureAlign.
    tower = [f'{{}}.{i}.{p}' for i in range(2) for p in ('conv.weight', 'gn.weight', 'gn.bias')]
    head = build('align')
    assert list(head.state_dict()) == [key.format('reg_convs') for key in tower] + [
        'conv_reg.weight', 'conv_reg.bias', *[key.format('cls_convs') for key in tower],
        'feature_adaption.conv_offset.weight', 'feature_adaption.conv_adaption.weight',
        'conv_cls.weight', 'conv_cls.bias']
    assert head.cls_convs[0].conv.weight.shape == (32, 8, 3, 3)
    assert head.cls_convs[1].conv.weight.shape == (32, 32, 1, 1)
    assert head.conv_cls.weight.shape == (4, 32, 3, 3)
    assert head.feature_adaption.conv_offset.weight.shape == (4 * 18, 4, 1, 1)
    assert head.feature_adaption.conv_adaption.weight.shape == (8, 8, 3, 3)


# Measured with MMDetection 3.3's FoveaHead on the same weights and features
# (tools/dev/measure_fovea.py); detlab's losses and detections equal them bit for bit.
MMDET_LOSSES = {
    'plain': dict(loss_cls=23.425067901611328, loss_bbox=4.330368518829346),
    'align': dict(loss_cls=20.826608657836914, loss_bbox=3.1623425483703613),
}
MMDET_DETECTIONS = {
    'plain': dict(counts=[20, 20], score_sums=[17.373306274414062, 17.09183692932129],
                  first_boxes=[[17.88288688659668, 8.084595680236816, 39.5, 13.719106674194336],
                               [38.47023391723633, 28.072952270507812, 71.0, 48.58649444580078]],
                  first_labels=[[2, 0, 2, 2, 0, 0, 0, 0], [2, 2, 0, 2, 3, 2, 0, 0]]),
    'align': dict(counts=[20, 20], score_sums=[17.1005802154541, 17.717554092407227],
                  first_boxes=[[5.386261940002441, 0.0, 18.24724006652832, 15.600568771362305],
                               [52.16626739501953, 0.0, 71.0, 31.55048942565918]],
                  first_labels=[[3, 3, 3, 3, 3, 3, 3, 0], [3, 3, 3, 3, 3, 3, 3, 3]]),
}


@pytest.mark.parametrize('case', ['plain', 'align'])
def test_losses_equal_mmdetections(case):
    head = build(case)
    losses = head.loss_by_feat(*head(fovea_feats()), batch_gt_instances=FOVEA_GTS,
                               batch_img_metas=FOVEA_METAS)
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    for name, expected in MMDET_LOSSES[case].items():
        assert losses[name].item() == pytest.approx(expected, rel=1e-6), name
    sum(losses.values()).backward()
    assert head.conv_reg.weight.grad.abs().sum() > 0
    if case == 'align':  # the class loss reaches the box branch through the offsets
        assert head.feature_adaption.conv_offset.weight.grad.abs().sum() > 0


@pytest.mark.parametrize('case', ['plain', 'align'])
def test_detections_equal_mmdetections(case):
    head = build(case).eval()
    with torch.no_grad():
        results = head.predict_by_feat(*head(fovea_feats()), batch_img_metas=FOVEA_METAS,
                                       rescale=True)
    expected = MMDET_DETECTIONS[case]
    assert [len(r) for r in results] == expected['counts']
    for result, score_sum, box, labels in zip(results, expected['score_sums'],
                                              expected['first_boxes'], expected['first_labels']):
        assert result.scores.sum().item() == pytest.approx(score_sum, rel=1e-6)
        assert result.bboxes[0].tolist() == pytest.approx(box, abs=1e-5)
        assert result.labels[:8].tolist() == labels


def test_targets_paint_smaller_boxes_over_larger_ones_in_the_fovea():
    head = build(strides=[8], base_edge_list=[16], scale_ranges=[(1, 1000)])
    sizes = [torch.Size((8, 10))]
    big_and_small = InstanceData(bboxes=torch.tensor([[0., 0., 80., 64.], [24., 16., 56., 48.]]),
                                 labels=torch.tensor([1, 2]))
    (labels,), (targets,) = head._get_targets_single(big_and_small, sizes,
                                                     head.prior_generator.grid_priors(sizes))
    # Fovea cells (sigma 0.4, in stride units): the big box's rows 2-5, columns 3-6;
    # the small box's rows 3-4, columns 4-5, painted last.
    expected = torch.full((8, 10), 4)
    expected[2:6, 3:7] = 1
    expected[3:5, 4:6] = 2
    assert torch.equal(labels, expected)
    # The point (36, 28) is 12, 12, 20, 20 pixels from the small box's sides;
    # (28, 20) is 28, 20, 52, 44 from the big box's: logs in units of 16.
    assert targets[3, 4].tolist() == pytest.approx(
        torch.log(torch.tensor([12., 12., 20., 20.]) / 16).tolist(), abs=1e-6)
    assert targets[2, 3].tolist() == pytest.approx(
        torch.log(torch.tensor([28., 20., 52., 44.]) / 16).tolist(), abs=1e-6)
    assert targets[0, 0].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_no_gt_gives_zero_box_loss_and_still_trains_the_classifier():
    head = build()
    empty = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    losses = head.loss_by_feat(*head(fovea_feats()), batch_gt_instances=[empty, empty],
                               batch_img_metas=FOVEA_METAS)
    assert losses['loss_bbox'].item() == 0 and losses['loss_cls'].item() > 0
    losses['loss_cls'].backward()
    assert head.conv_cls.weight.grad.abs().sum() > 0


def test_one_base_edge_and_scale_range_per_level_is_required():
    with pytest.raises(ValueError, match='base_edge_list has 2 entries for 3 strides'):
        MODELS.build(dict(CASES['plain'], base_edge_list=[16, 32]))
