"""RTMDet: MMDetection 3.3's losses and detections for the same weights and inputs.

The numbers below were measured by tools/dev/measure_rtmdet.py on MMDetection 3.3's RTMDet
built from its own configs (tests/data/mmdet_3.3_configs/rtmdet/; RTMDet-tiny also with
RTMDetHead in place of RTMDetSepBNHead), with the seeded weights and
the coco128 batch (two photos resized to fit 320 x 320 and padded) of rtmdet_parity.py:
detections in eval mode (count, score sum and top 5 per image, rescaled to the original photo),
then the per-level losses in train mode.
"""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.layers import ExpMomentumEMA
from detlab.registry import MODELS
from detlab.structures import DetDataSample
from helpers import REPO_ROOT, require_coco128
from rtmdet_parity import (CONFIGS, assert_detections_equal, coco128_batch, ema_updates,
                           parity_model_cfg, parity_samples, parity_state_dict)

SIZE = 320
MMDET_REFERENCE = (
    {'tiny': {'level_losses': {'loss_cls': [178.8247833251953,
                                            47.59423065185547,
                                            10.275962829589844],
                               'loss_bbox': [0.42731067538261414,
                                             0.28110477328300476,
                                             0.41527727246284485]},
              'detections': [{'num': 300,
                              'score_sum': 281.5993957519531,
                              'labels': [72, 72, 49, 72, 47],
                              'scores': [0.9973957538604736,
                                         0.9960622191429138,
                                         0.9953501224517822,
                                         0.9934137463569641,
                                         0.9929083585739136],
                              'boxes': [[384.5321350097656,
                                         133.3492889404297,
                                         442.150634765625,
                                         169.3756561279297],
                                        [466.8583068847656,
                                         280.68914794921875,
                                         514.9612426757812,
                                         321.9720764160156],
                                        [466.8583068847656,
                                         280.68914794921875,
                                         514.9612426757812,
                                         321.9720764160156],
                                        [448.21087646484375,
                                         136.41505432128906,
                                         500.127197265625,
                                         179.3506317138672],
                                        [482.3888854980469,
                                         211.06292724609375,
                                         539.3760375976562,
                                         251.27822875976562]]},
                             {'num': 300,
                              'score_sum': 204.72715759277344,
                              'labels': [72, 49, 72, 72, 39],
                              'scores': [0.9698450565338135,
                                         0.952468991279602,
                                         0.9403995871543884,
                                         0.9228384494781494,
                                         0.9122240543365479],
                              'boxes': [[229.26699829101562,
                                         269.2052001953125,
                                         271.0257263183594,
                                         304.1773986816406],
                                        [229.26699829101562,
                                         269.2052001953125,
                                         271.0257263183594,
                                         304.1773986816406],
                                        [34.05878829956055,
                                         358.0328369140625,
                                         78.94994354248047,
                                         395.29083251953125],
                                        [201.29930114746094,
                                         291.8643798828125,
                                         244.8658447265625,
                                         334.2538757324219],
                                        [201.90928649902344,
                                         266.7196960449219,
                                         241.55020141601562,
                                         299.76300048828125]]}]},
     's': {'level_losses': {'loss_cls': [202.8310089111328, 47.912620544433594, 9.110308647155762],
                            'loss_bbox': [0.39308178424835205,
                                          0.33645519614219666,
                                          0.5525961518287659]},
           'detections': [{'num': 300,
                           'score_sum': 267.8831787109375,
                           'labels': [13, 55, 47, 54, 26],
                           'scores': [0.9954653382301331,
                                      0.994758665561676,
                                      0.9898876547813416,
                                      0.9896492958068848,
                                      0.9894689321517944],
                           'boxes': [[24.78154754638672,
                                      362.19647216796875,
                                      75.90472412109375,
                                      425.4770812988281],
                                     [18.556541442871094,
                                      374.10223388671875,
                                      50.26618957519531,
                                      427.2239990234375],
                                     [462.20184326171875,
                                      50.65117645263672,
                                      470.525146484375,
                                      92.21366119384766],
                                     [18.556541442871094,
                                      374.10223388671875,
                                      50.26618957519531,
                                      427.2239990234375],
                                     [17.944190979003906,
                                      352.4361572265625,
                                      51.5111083984375,
                                      411.1171569824219]]},
                          {'num': 300,
                           'score_sum': 230.94493103027344,
                           'labels': [59, 72, 26, 59, 38],
                           'scores': [0.959502637386322,
                                      0.9592998623847961,
                                      0.9546947479248047,
                                      0.9542221426963806,
                                      0.9517015814781189],
                           'boxes': [[220.49754333496094,
                                      304.3546447753906,
                                      254.15805053710938,
                                      334.4920654296875],
                                     [229.8436279296875,
                                      260.4940185546875,
                                      269.63720703125,
                                      300.8722229003906],
                                     [222.89122009277344,
                                      265.79461669921875,
                                      249.71592712402344,
                                      299.8395690917969],
                                     [237.08517456054688,
                                      276.05950927734375,
                                      262.3627624511719,
                                      314.1158447265625],
                                     [222.89122009277344,
                                      265.79461669921875,
                                      249.71592712402344,
                                      299.8395690917969]]}]},
     'tiny-rtmdethead': {'level_losses': {'loss_cls': [346.02117919921875,
                                                       85.40328216552734,
                                                       21.723859786987305],
                                          'loss_bbox': [0.5773293972015381,
                                                        0.45201730728149414,
                                                        0.0]},
                         'detections': [{'num': 300,
                                         'score_sum': 221.91082763671875,
                                         'labels': [33, 38, 38, 44, 44],
                                         'scores': [0.9399465918540955,
                                                    0.9095354080200195,
                                                    0.9023621082305908,
                                                    0.9018193483352661,
                                                    0.8728166222572327],
                                         'boxes': [[187.464599609375,
                                                    146.05287170410156,
                                                    640.0,
                                                    480.0],
                                                   [187.464599609375,
                                                    146.05287170410156,
                                                    640.0,
                                                    480.0],
                                                   [309.36724853515625,
                                                    48.74176025390625,
                                                    491.18212890625,
                                                    249.2749786376953],
                                                   [187.464599609375,
                                                    146.05287170410156,
                                                    640.0,
                                                    480.0],
                                                   [365.498779296875,
                                                    189.52951049804688,
                                                    621.26708984375,
                                                    424.3848876953125]]},
                                        {'num': 300,
                                         'score_sum': 230.81048583984375,
                                         'labels': [62, 44, 21, 67, 44],
                                         'scores': [0.9501864314079285,
                                                    0.9465059638023376,
                                                    0.9427591562271118,
                                                    0.9240227341651917,
                                                    0.9201000332832336],
                                         'boxes': [[0.0,
                                                    299.56494140625,
                                                    194.07740783691406,
                                                    414.29925537109375],
                                                   [0.0,
                                                    299.56494140625,
                                                    194.07740783691406,
                                                    414.29925537109375],
                                                   [0.0,
                                                    299.56494140625,
                                                    194.07740783691406,
                                                    414.29925537109375],
                                                   [68.55945587158203,
                                                    178.73239135742188,
                                                    381.0,
                                                    470.07940673828125],
                                                   [28.645261764526367,
                                                    231.1908721923828,
                                                    181.68251037597656,
                                                    318.10980224609375]]}]}})

# ExpMomentumEMA of MMDetection 3.3 after 50 updates (rtmdet_parity.ema_updates): per
# state_dict entry, the first three values and the sum.
MMDET_EMA = {
    '0.weight': [-0.14040639996528625, -0.06987332552671432, -0.9649877548217773,
                 0.8652228116989136],
    '0.bias': [-0.04677852243185043, 0.10792990028858185, -0.10727889835834503,
               -0.6477142572402954],
    '1.weight': [0.9299221038818359, 1.3090921640396118, -0.4155621826648712,
                 2.1866888999938965],
    '1.bias': [0.9503903985023499, 1.0109293460845947, -0.022447457537055016,
               0.6056827306747437],
    '1.running_mean': [-0.04844190552830696, 0.24648231267929077, -0.026087746024131775,
                       0.47167184948921204],
    '1.running_var': [0.728342592716217, 1.3374062776565552, 1.2232849597930908,
                      4.7130889892578125],
    '1.num_batches_tracked': [0, 0.0]}


def build(name: str):
    """Parity case ``name``'s detlab model."""
    return MODELS.build(parity_model_cfg(REPO_ROOT, name))


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_losses_and_detections_equal_mmdetections(name):
    inputs, metas, gts = coco128_batch(require_coco128(), SIZE)
    torch.manual_seed(0)
    model = build(name)
    parity_state_dict(model, inputs)
    reference = MMDET_REFERENCE[name]

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, parity_samples(DetDataSample, metas, gts), rescale=True)
    assert_detections_equal(results, reference['detections'])

    model.train()
    batch_samples = parity_samples(DetDataSample, metas, gts)
    losses = model.loss(inputs, batch_samples)
    assert set(losses) == {'loss_cls', 'loss_bbox'}
    for key, levels in reference['level_losses'].items():
        assert [v.item() for v in losses[key]] == pytest.approx(levels, rel=1e-5), key
    sum(sum(levels) for levels in losses.values()).backward()
    assert model.backbone.stem[0].conv.weight.grad is not None
    # The samples are left as they were given.
    assert torch.equal(batch_samples[0].gt_instances.bboxes, gts[0][0])


def test_sepbn_head_shares_tower_convs_but_not_norms():
    model = build('tiny')
    head = model.bbox_head
    assert head.cls_convs[2][1].conv is head.cls_convs[0][1].conv
    assert head.reg_convs[1][0].conv is head.reg_convs[0][0].conv
    assert head.cls_convs[1][0].bn is not head.cls_convs[0][0].bn
    keys = model.state_dict()
    # MMDetection's state_dict repeats the shared weights under every level's keys.
    assert 'bbox_head.cls_convs.2.1.conv.weight' in keys
    assert torch.equal(keys['bbox_head.cls_convs.2.1.conv.weight'],
                       keys['bbox_head.cls_convs.0.1.conv.weight'])


def test_images_without_gts_give_background_targets_and_finite_losses():
    model = build('tiny')
    model.init_weights()
    model.train()
    meta = dict(img_shape=(64, 96), pad_shape=(64, 96), ori_shape=(64, 96),
                scale_factor=(1.0, 1.0), batch_input_shape=(64, 96))
    empty = DetDataSample(metainfo=meta)
    empty.gt_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
    one = DetDataSample(metainfo=meta)
    one.gt_instances = InstanceData(bboxes=torch.tensor([[10., 8., 50., 40.]]),
                                    labels=torch.tensor([3]))
    inputs = torch.randn(2, 3, 64, 96)
    losses = model.loss(inputs, [copy.deepcopy(empty), copy.deepcopy(empty)])
    assert all(torch.isfinite(v).all() for levels in losses.values() for v in levels)
    assert sum(losses['loss_bbox']).item() == 0
    losses = model.loss(inputs, [empty, one])
    assert sum(losses['loss_bbox']).item() > 0


def test_exp_momentum_ema_equals_mmdetections_after_50_updates():
    averaged = ema_updates(ExpMomentumEMA)
    assert set(averaged) == set(MMDET_EMA)
    for key, values in MMDET_EMA.items():
        assert averaged[key] == pytest.approx(values, rel=1e-6, abs=1e-7), key
    with pytest.raises(ValueError, match='gamma'):
        ExpMomentumEMA(torch.nn.Linear(1, 1), gamma=0)
