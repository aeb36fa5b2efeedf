"""SSD and YOLOv3: MMDetection 3.3's state_dicts, losses and detections for the same
weights and inputs.

The numbers below were measured by tools/dev/measure_ssd_yolo.py on MMDetection 3.3's
models built from its own configs (tests/data/mmdet_3.3_configs/ssd/ and yolo/), with the
seeded weights and the coco128 batch of ssd_yolo_parity.py (two photos resized to fit
300 x 300 for SSD300, 320 x 320 for YOLOv3, and padded): detections in eval mode (count,
score sum and top 5 per image, rescaled to the original photo), then the losses in train
mode (per image for SSD, per level for YOLOv3, as MMDetection returns them).
"""
import pytest
import torch
from mmengine.config import Config
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.errors import AssertionValueError
from detlab.utils import adopt_default_scope
from helpers import REPO_ROOT, require_coco128, state_dict_signature
from rtmdet_parity import assert_detections_equal, coco128_batch, parity_samples
from ssd_yolo_parity import ALL_CONFIGS, CASES, parity_model_cfg, parity_state_dict

MMDET_CONFIGS = REPO_ROOT / 'tests/data/mmdet_3.3_configs'
# (entries, SHA-1 of the sorted (key, shape) list) of the models MMDetection 3.3 builds
# from these files (measure_ssd_yolo.py --state-dicts).
MMDET_SIGNATURES = {
    'ssd/ssd300_coco.py': (71, '3c99549337fb9dc486c8b5c7aefd7ad824ef04b2'),
    'ssd/ssd512_coco.py': (79, '86fbcbb85cf050453d45d9cebd26aaace08a3159'),
    'ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py': (480, 'd697d3631d97d38cd9d5f32940ff01a7397ced93'),
    'yolo/yolov3_d53_8xb8-320-273e_coco.py': (438, 'aa0c0e26c881b26459bd25fa0dedbc7e96238b8c'),
    'yolo/yolov3_d53_8xb8-amp-ms-608-273e_coco.py': (438, 'aa0c0e26c881b26459bd25fa0dedbc7e96238b8c'),
    'yolo/yolov3_d53_8xb8-ms-416-273e_coco.py': (438, 'aa0c0e26c881b26459bd25fa0dedbc7e96238b8c'),
    'yolo/yolov3_d53_8xb8-ms-608-273e_coco.py': (438, 'aa0c0e26c881b26459bd25fa0dedbc7e96238b8c'),
    'yolo/yolov3_mobilenetv2_8xb24-320-300e_coco.py': (438, 'e71b5f9701fa3995fe8b720da1c4ad4d90be9bb3'),
    'yolo/yolov3_mobilenetv2_8xb24-ms-416-300e_coco.py': (438, 'e71b5f9701fa3995fe8b720da1c4ad4d90be9bb3'),
}

MMDET_REFERENCE = {'ssd300': {'detections': [{'boxes': [[166.32553100585938, 290.7461853027344,
                                                         280.8302917480469, 349.5429992675781],
                                                        [164.8980255126953, 324.7811279296875,
                                                         282.0783996582031, 382.1242370605469],
                                                        [161.33575439453125, 359.4774475097656,
                                                         280.39111328125, 416.33331298828125],
                                                        [163.14059448242188, 254.41668701171875,
                                                         277.3802490234375, 315.0471496582031],
                                                        [334.83331298828125, 84.39627838134766,
                                                         440.651611328125, 150.65220642089844]],
                                              'labels': [36, 36, 36, 36, 36],
                                              'num': 200,
                                              'score_sum': 158.324951171875,
                                              'scores': [0.988843560218811, 0.9838240146636963,
                                                         0.9805305004119873, 0.979203462600708,
                                                         0.9722723960876465]},
                                             {'boxes': [[256.08013916015625, 175.28189086914062,
                                                         344.7463684082031, 216.65234375],
                                                        [256.88287353515625, 201.43043518066406,
                                                         346.7348937988281, 241.8666229248047],
                                                        [257.7587890625, 228.45071411132812,
                                                         347.16729736328125, 269.0137023925781],
                                                        [201.1352081298828, 172.4434051513672,
                                                         287.9908752441406, 217.65060424804688],
                                                        [49.931640625, 391.8218078613281,
                                                         144.4261932373047, 462.37640380859375]],
                                              'labels': [36, 36, 36, 36, 4],
                                              'num': 200,
                                              'score_sum': 156.73281860351562,
                                              'scores': [0.9756617546081543, 0.9536393284797668,
                                                         0.9511746168136597, 0.9461588859558105,
                                                         0.9422956705093384]}],
                              'losses': {'loss_bbox': [1.7510967254638672, 1.4742300510406494],
                                         'loss_cls': [26.641870498657227, 17.92340660095215]}},
                   'yolov3_d53': {'detections': [{'boxes': [[100.64872741699219, 188.23231506347656,
                                                             142.7632598876953,
                                                             211.79100036621094],
                                                            [100.64872741699219, 188.23231506347656,
                                                             142.7632598876953,
                                                             211.79100036621094],
                                                            [96.92581176757812, 125.46930694580078,
                                                             115.22540283203125,
                                                             175.55398559570312],
                                                            [85.12641906738281, 152.57440185546875,
                                                             125.64503479003906,
                                                             181.3433837890625],
                                                            [73.44815063476562, 209.85455322265625,
                                                             101.669921875, 223.17642211914062]],
                                                  'labels': [10, 25, 4, 4, 60],
                                                  'num': 100,
                                                  'score_sum': 50.697418212890625,
                                                  'scores': [0.6254064440727234, 0.6221216320991516,
                                                             0.6154928207397461, 0.6126241087913513,
                                                             0.6072293519973755]},
                                                 {'boxes': [[73.98471069335938, 73.03475952148438,
                                                             265.6875, 267.992919921875],
                                                            [274.0365295410156, 151.18765258789062,
                                                             288.1413269042969,
                                                             161.40174865722656],
                                                            [147.17434692382812, 139.32916259765625,
                                                             165.49388122558594,
                                                             151.3606414794922],
                                                            [222.90089416503906, 173.6320037841797,
                                                             241.41954040527344,
                                                             189.01710510253906],
                                                            [133.33892822265625, 138.5402069091797,
                                                             154.35523986816406, 151.24853515625]],
                                                  'labels': [34, 24, 4, 4, 4],
                                                  'num': 100,
                                                  'score_sum': 52.52864074707031,
                                                  'scores': [0.604797899723053, 0.583909273147583,
                                                             0.5758481621742249, 0.5695021152496338,
                                                             0.5673575401306152]}],
                                  'losses': {'loss_cls': [510.6990966796875, 504.1070556640625,
                                                          497.11962890625],
                                             'loss_conf': [460.6959228515625, 1729.72412109375,
                                                           6050.5703125],
                                             'loss_wh': [4.518568992614746, 7.19627046585083,
                                                         8.32927131652832],
                                             'loss_xy': [25.6580867767334, 25.60382080078125,
                                                         23.58865737915039]}}}


def build_config(path):
    cfg = Config.fromfile(str(path))
    adopt_default_scope(cfg)
    cfg.model.backbone.init_cfg = None  # the ImageNet weights would need a download
    return MODELS.build(cfg.model)


@pytest.mark.parametrize('path', ALL_CONFIGS)
def test_mmdet_config_builds_mmdets_state_dict(path):
    assert state_dict_signature(build_config(MMDET_CONFIGS / path)) == MMDET_SIGNATURES[path]


@pytest.mark.parametrize('path', ALL_CONFIGS + ('_base_/models/ssd300.py', ))
def test_detlab_config_is_mmdets(path):
    assert (REPO_ROOT / 'configs' / path).read_bytes() == (MMDET_CONFIGS / path).read_bytes()


@pytest.mark.parametrize('name', sorted(CASES))
def test_losses_and_detections_equal_mmdetections(name):
    inputs, metas, gts = coco128_batch(require_coco128(), CASES[name][1])
    model = MODELS.build(parity_model_cfg(REPO_ROOT, name))
    parity_state_dict(model, inputs)
    reference = MMDET_REFERENCE[name]

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, parity_samples(DetDataSample, metas, gts), rescale=True)
    assert_detections_equal(results, reference['detections'])

    model.train()
    batch_samples = parity_samples(DetDataSample, metas, gts)
    losses = model.loss(inputs, batch_samples)
    assert set(losses) == set(reference['losses'])
    for key, values in reference['losses'].items():
        assert [v.item() for v in losses[key]] == pytest.approx(values, rel=1e-5), key
    sum(sum(values) for values in losses.values()).backward()
    assert all(p.grad is not None for p in model.bbox_head.parameters())
    assert torch.equal(batch_samples[0].gt_instances.bboxes, gts[0][0])


# ---- SSDHead --------------------------------------------------------------
def tiny_ssd_head(**kwargs):
    cfg = dict(type='SSDHead', num_classes=3, in_channels=(8, 8),
               anchor_generator=dict(type='SSDAnchorGenerator', scale_major=False,
                                     strides=[8, 16], ratios=[[2], [2, 3]],
                                     min_sizes=[12, 30], max_sizes=[30, 60]),
               bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                               target_stds=[0.1, 0.1, 0.2, 0.2]),
               train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                            neg_iou_thr=0.5, min_pos_iou=0.,
                                            ignore_iof_thr=-1, gt_max_assign_all=False),
                              sampler=dict(type='PseudoSampler'), smoothl1_beta=1.,
                              allowed_border=-1, pos_weight=-1, neg_pos_ratio=3),
               test_cfg=dict(nms_pre=100, nms=dict(type='nms', iou_threshold=0.45),
                             min_bbox_size=0, score_thr=0.02, max_per_img=20))
    cfg.update(kwargs)
    return MODELS.build(cfg)


def tiny_batch(num_gts=(2, 0)):
    generator = torch.Generator().manual_seed(0)
    feats = [torch.randn(len(num_gts), 8, 8, 8, generator=generator),
             torch.randn(len(num_gts), 8, 4, 4, generator=generator)]
    gts, metas = [], []
    for count in num_gts:
        xy = torch.rand(count, 2, generator=generator) * 32
        wh = 12 + torch.rand(count, 2, generator=generator) * 24
        gts.append(InstanceData(bboxes=torch.cat([xy, (xy + wh).clamp(max=64)], dim=1),
                                labels=torch.arange(count) % 3))
        metas.append(dict(img_shape=(64, 64), pad_shape=(64, 64), scale_factor=(1., 1.)))
    return feats, gts, metas


def test_ssd_head_mines_three_negatives_per_positive_per_image():
    head = tiny_ssd_head()
    feats, gts, metas = tiny_batch((2, 1))
    cls_scores, bbox_preds = head(feats)
    losses = head.loss_by_feat(cls_scores, bbox_preds, gts, metas)
    # The per-image reference: MMDetection's top-k of the negatives' cross-entropy.
    anchors = torch.cat(head.prior_generator.grid_priors([f.shape[-2:] for f in feats]))
    targets = head.get_targets(anchors, [f.shape[-2:] for f in feats], gts, metas)
    scores = torch.cat([s.permute(0, 2, 3, 1).reshape(2, -1, 4) for s in cls_scores], dim=1)
    for img in range(2):
        ce = torch.nn.functional.cross_entropy(scores[img], targets.labels[img],
                                               reduction='none')
        pos = targets.labels[img] < 3
        neg_ce = ce[targets.labels[img] == 3]
        hardest = neg_ce.topk(min(3 * int(pos.sum()), len(neg_ce))).values
        expected = (ce[pos].sum() + hardest.sum()) / targets.avg_factor
        assert int(pos.sum()) > 0
        assert losses['loss_cls'][img].item() == pytest.approx(expected.item(), rel=1e-6)
        assert losses['loss_bbox'][img].item() > 0


def test_ssd_head_image_without_gts_has_zero_losses():
    head = tiny_ssd_head()
    feats, gts, metas = tiny_batch((2, 0))
    losses = head.loss_by_feat(*head(feats), gts, metas)
    assert losses['loss_cls'][1].item() == 0 and losses['loss_bbox'][1].item() == 0
    assert losses['loss_cls'][0].item() > 0
    assert all(torch.isfinite(v) for values in losses.values() for v in values)


def test_ssd_head_predicts_with_softmax_background_last():
    head = tiny_ssd_head().eval()
    feats, _, metas = tiny_batch((0, 0))
    cls_scores, bbox_preds = head(feats)
    assert head.cls_out_channels == 4 and head.num_base_priors == [4, 6]
    assert [tuple(s.shape[1:]) for s in cls_scores] == [(16, 8, 8), (24, 4, 4)]
    results = head.predict_by_feat(cls_scores, bbox_preds, batch_img_metas=metas)
    for result in results:
        assert 0 < len(result) <= 20
        assert result.labels.max() < 3 and (result.scores > 0.02).all()
        assert (result.bboxes >= 0).all() and (result.bboxes <= 64).all()


def test_ssdlite_head_is_depthwise_with_pointwise_predictors():
    head = tiny_ssd_head(use_depthwise=True, norm_cfg=dict(type='BN'),
                         act_cfg=dict(type='ReLU6'))
    depthwise, predictor = head.cls_convs[1][0], head.cls_convs[1][1]
    assert depthwise.conv.groups == 8 and depthwise.conv.kernel_size == (3, 3)
    assert predictor.kernel_size == (1, 1) and predictor.out_channels == 6 * 4
    assert 'cls_convs.0.0.bn.weight' in head.state_dict()


def test_ssd_head_needs_neg_pos_ratio():
    with pytest.raises(AssertionValueError, match='neg_pos_ratio'):
        tiny_ssd_head(train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5,
                                                   neg_iou_thr=0.5)))


# ---- YOLOV3Head -----------------------------------------------------------
def tiny_yolo_head(**kwargs):
    cfg = dict(type='YOLOV3Head', num_classes=3, in_channels=[8, 8], out_channels=[8, 8],
               anchor_generator=dict(type='YOLOAnchorGenerator',
                                     base_sizes=[[(30, 30), (40, 20)], [(12, 12), (8, 16)]],
                                     strides=[16, 8]),
               featmap_strides=[16, 8],
               train_cfg=dict(assigner=dict(type='GridAssigner', pos_iou_thr=0.5,
                                            neg_iou_thr=0.5, min_pos_iou=0)),
               test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05, conf_thr=0.005,
                             nms=dict(type='nms', iou_threshold=0.45), max_per_img=20))
    cfg.update(kwargs)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def test_yolo_head_without_gts_learns_only_objectness():
    head = tiny_yolo_head()
    feats, gts, metas = tiny_batch((0, 0))
    feats = feats[::-1]  # strides 16 then 8
    losses = head.loss(feats, [DetDataSample(metainfo=m, gt_instances=g)
                               for m, g in zip(metas, gts)])
    assert set(losses) == {'loss_cls', 'loss_conf', 'loss_xy', 'loss_wh'}
    for key in ('loss_cls', 'loss_xy', 'loss_wh'):
        assert all(v.item() == 0 for v in losses[key]), key
    assert all(v.item() > 0 for v in losses['loss_conf'])


def test_yolo_head_positives_sit_in_the_cells_holding_gt_centres():
    head = tiny_yolo_head()
    gt = torch.tensor([[20., 20., 44., 44.]])  # centre (32, 32)
    flags = head.responsible_flags([(4, 4), (8, 8)], gt, torch.device('cpu'))
    assert [f.shape[0] for f in flags] == [32, 128]
    assert flags[0].reshape(4, 4, 2)[2, 2].tolist() == [1, 1] and flags[0].sum() == 2
    assert flags[1].reshape(8, 8, 2)[4, 4].tolist() == [1, 1] and flags[1].sum() == 2


def test_yolo_head_objectness_biases_and_conf_thr():
    head = tiny_yolo_head().eval()
    bias = head.convs_pred[0].bias.reshape(2, -1)
    # Objectness prior: 8 objects per 608-pixel image of 16-pixel cells.
    assert torch.allclose(bias[:, 4].sigmoid(), torch.full((2, ), 8 / 38**2))
    assert torch.allclose(bias[:, 5:].sigmoid(), torch.full((2, 3), 0.01))
    feats, _, metas = tiny_batch((0, 0))
    outs = head(feats[::-1])
    assert len(outs) == 1 and len(outs[0]) == 2
    kept = head.predict_by_feat(*outs, batch_img_metas=metas, cfg=dict(
        head.test_cfg, conf_thr=1e-3, score_thr=0.))
    assert all(len(result) > 0 for result in kept)
    none = head.predict_by_feat(*outs, batch_img_metas=metas,
                                cfg=dict(head.test_cfg, conf_thr=0.5))
    assert all(len(result) == 0 for result in none)
