"""YOLOX: MMDetection 3.3's losses and detections for the same weights and inputs, and the
batched SimOTA assignment.

The numbers below were measured by tools/dev/measure_yolox.py on MMDetection 3.3's YOLOX built
from its own configs (tests/data/mmdet_3.3_configs/yolox/; YOLOX-tiny with the L1 loss of the
last epochs on), with the seeded weights of yolox_parity.py and the coco128 batch (two photos
resized to fit 320 x 320 and padded) of rtmdet_parity.py: detections in eval mode (count,
score sum and top 5 per image, rescaled to the original photo), then the losses in train mode.
"""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.task_modules.assigners import SimOTAAssigner
from detlab.registry import MODELS
from detlab.structures import DetDataSample
from helpers import REPO_ROOT, require_coco128
from rtmdet_parity import coco128_batch, parity_samples
from yolox_parity import CONFIGS, parity_model_cfg, parity_state_dict

SIZE = 320
MMDET_REFERENCE = (
    {'tiny': {'losses': {'loss_cls': 18.872112274169922,
                         'loss_bbox': 4.287271499633789,
                         'loss_obj': 44.8270378112793,
                         'loss_l1': 2.389651298522949},
              'detections': [{'num': 2096,
                              'boxes': [[449.3652648925781,
                                         463.4349670410156,
                                         521.415283203125,
                                         498.1694641113281],
                                        [485.016357421875,
                                         464.0802001953125,
                                         526.644287109375,
                                         533.1390380859375],
                                        [571.518798828125,
                                         414.5120544433594,
                                         644.1138916015625,
                                         479.0926208496094],
                                        [503.2503967285156,
                                         402.4281921386719,
                                         556.65625,
                                         445.0967102050781],
                                        [521.1759643554688,
                                         446.633544921875,
                                         576.7252807617188,
                                         485.64508056640625]],
                              'scores': [0.774234414100647,
                                         0.750826895236969,
                                         0.7491086721420288,
                                         0.6861927509307861,
                                         0.662431538105011],
                              'labels': [10, 20, 25, 61, 4],
                              'score_sum': 307.92999267578125},
                             {'num': 2093,
                              'boxes': [[257.9274597167969,
                                         273.1466064453125,
                                         282.5286865234375,
                                         296.08880615234375],
                                        [259.986083984375,
                                         257.33685302734375,
                                         305.8056335449219,
                                         296.1322937011719],
                                        [216.24462890625,
                                         294.02008056640625,
                                         258.5080261230469,
                                         325.6842346191406],
                                        [219.73953247070312,
                                         298.36944580078125,
                                         277.3858337402344,
                                         339.3388671875],
                                        [208.6468048095703,
                                         251.07666015625,
                                         277.46514892578125,
                                         321.60174560546875]],
                              'scores': [0.9712257385253906,
                                         0.8929129838943481,
                                         0.8801371455192566,
                                         0.8643891215324402,
                                         0.8565911650657654],
                              'labels': [63, 70, 53, 28, 76],
                              'score_sum': 322.39129638671875}]},
     's': {'losses': {'loss_cls': 18.83237075805664,
                      'loss_bbox': 4.251029968261719,
                      'loss_obj': 48.52035140991211},
           'detections': [{'num': 2097,
                           'boxes': [[581.9444580078125,
                                      398.56695556640625,
                                      627.1112060546875,
                                      440.654052734375],
                                     [520.8456420898438,
                                      412.700927734375,
                                      668.9946899414062,
                                      519.1739501953125],
                                     [506.2721252441406,
                                      438.12652587890625,
                                      542.3367309570312,
                                      484.88470458984375],
                                     [473.56939697265625,
                                      471.05010986328125,
                                      526.5548095703125,
                                      505.06610107421875],
                                     [494.4712829589844,
                                      443.5620422363281,
                                      551.676025390625,
                                      480.0872497558594]],
                           'scores': [0.8339552879333496,
                                      0.7803793549537659,
                                      0.7539059519767761,
                                      0.7378687262535095,
                                      0.6874402165412903],
                           'labels': [76, 70, 9, 11, 24],
                           'score_sum': 300.9494934082031},
                          {'num': 2084,
                           'boxes': [[194.76034545898438,
                                      310.4971618652344,
                                      263.1712341308594,
                                      342.6374206542969],
                                     [181.05010986328125,
                                      257.99700927734375,
                                      304.33319091796875,
                                      429.17840576171875],
                                     [250.19810485839844,
                                      186.15174865722656,
                                      336.00799560546875,
                                      257.26556396484375],
                                     [92.88671875,
                                      326.56256103515625,
                                      277.2588195800781,
                                      409.5030517578125],
                                     [240.62098693847656,
                                      293.08758544921875,
                                      252.07386779785156,
                                      360.6165466308594]],
                           'scores': [0.8778024911880493,
                                      0.8688911199569702,
                                      0.7924158573150635,
                                      0.7569271326065063,
                                      0.7281789779663086],
                           'labels': [9, 18, 0, 4, 42],
                           'score_sum': 313.4994812011719}]}})


def build(name: str):
    """Parity case ``name``'s detlab model."""
    model = MODELS.build(parity_model_cfg(REPO_ROOT, name))
    model.bbox_head.use_l1 = CONFIGS[name][1]
    return model


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
    for result, expected in zip(results, reference['detections']):
        pred = result.pred_instances
        assert len(pred) == expected['num']
        assert pred.scores.sum().item() == pytest.approx(expected['score_sum'], rel=1e-5)
        top = len(expected['labels'])
        assert pred.labels[:top].tolist() == expected['labels']
        assert torch.allclose(pred.scores[:top], torch.tensor(expected['scores']), atol=1e-6)
        assert torch.allclose(pred.bboxes[:top], torch.tensor(expected['boxes']), atol=1e-3)

    model.train()
    batch_samples = parity_samples(DetDataSample, metas, gts)
    losses = model.loss(inputs, batch_samples)
    assert set(losses) == set(reference['losses'])
    for key, value in reference['losses'].items():
        assert losses[key].item() == pytest.approx(value, rel=1e-5), key
    sum(losses.values()).backward()
    assert model.backbone.stem.conv.conv.weight.grad is not None
    # The samples are left as they were given.
    assert torch.equal(batch_samples[0].gt_instances.bboxes, gts[0][0])


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
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_obj', 'loss_l1'}
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses['loss_bbox'].item() == 0 and losses['loss_cls'].item() == 0
    assert losses['loss_obj'].item() > 0  # every point learns "no object"
    losses = model.loss(inputs, [empty, one])
    assert losses['loss_bbox'].item() > 0 and losses['loss_l1'].item() > 0
    model.bbox_head.use_l1 = False
    assert 'loss_l1' not in model.loss(inputs, [empty, one])


def random_case(generator, num_priors=60, num_gts=4, num_classes=5):
    priors = torch.cat([torch.rand(num_priors, 2, generator=generator) * 64,
                        torch.full((num_priors, 2), 8.)], dim=1)
    xy = torch.rand(num_priors, 2, generator=generator) * 56
    boxes = torch.cat([xy, xy + 4 + torch.rand(num_priors, 2, generator=generator) * 20], 1)
    gt_xy = torch.rand(num_gts, 2, generator=generator) * 40
    gt_boxes = torch.cat([gt_xy, gt_xy + 8 + torch.rand(num_gts, 2, generator=generator) * 20],
                         1)
    return (InstanceData(priors=priors, bboxes=boxes,
                         scores=torch.rand(num_priors, num_classes, generator=generator)),
            InstanceData(bboxes=gt_boxes,
                         labels=torch.randint(num_classes, (num_gts, ), generator=generator)))


def test_sim_ota_batch_rows_equal_per_image_assignment():
    generator = torch.Generator().manual_seed(3)
    assigner = SimOTAAssigner(center_radius=2.5)
    cases = [random_case(generator, num_gts=k) for k in (4, 1, 6)]
    num_gts = max(len(gt) for _, gt in cases)
    gt_bboxes = torch.zeros(len(cases), num_gts, 4)
    gt_labels = torch.full((len(cases), num_gts), -1)
    gt_valid = torch.zeros(len(cases), num_gts, dtype=torch.bool)
    for i, (_, gt) in enumerate(cases):
        gt_bboxes[i, :len(gt)], gt_labels[i, :len(gt)], gt_valid[i, :len(gt)] = \
            gt.bboxes, gt.labels, True
    priors = cases[0][0].priors
    gt_inds, max_overlaps, labels = assigner.assign_batch(
        priors, torch.stack([p.bboxes for p, _ in cases]),
        torch.stack([p.scores for p, _ in cases]),
        torch.ones(len(cases), len(priors), dtype=torch.bool), gt_bboxes, gt_labels, gt_valid)
    for i, (pred, gt) in enumerate(cases):
        pred.priors = priors
        single = assigner.assign(pred, gt)
        assert torch.equal(single.gt_inds, gt_inds[i])
        assert torch.equal(single.labels, labels[i])
        assert torch.equal(single.max_overlaps, max_overlaps[i])
        pos = single.gt_inds > 0
        assert pos.any()
        # A positive's label is its gt's, its overlap the IoU with that gt.
        assert torch.equal(single.labels[pos], gt.labels[single.gt_inds[pos] - 1])
        assert (single.max_overlaps[~pos] == -100000.0).all()


def test_sim_ota_takes_dynamic_k_candidates_inside_box_and_centre():
    # One gt on a row of priors (x = 4 .. 36 in its centre square, 12 .. 28 also in its box,
    # 100 in neither). The candidates' IoUs (1, 0.917, 0.031, 0.26, 0.0625) sum to 2.27, so
    # dynamic_k = 2: the cheapest two are priors 1 and 3; prior 0 predicts the gt exactly but
    # lies outside the box, which costs INF.
    priors = torch.tensor([[x, 16., 8., 8.] for x in (4., 12., 20., 28., 36., 100.)])
    gt = InstanceData(bboxes=torch.tensor([[8., 8., 32., 24.]]), labels=torch.tensor([1]))
    pred_boxes = torch.tensor([[8., 8., 32., 24.], [8., 8., 30., 24.], [0., 0., 12., 12.],
                               [10., 10., 20., 20.], [30., 8., 40., 24.], [8., 8., 32., 24.]])
    scores = torch.full((6, 3), 0.1)
    pred = InstanceData(priors=priors, bboxes=pred_boxes, scores=scores)
    result = SimOTAAssigner(center_radius=2.5).assign(pred, gt)
    assert result.gt_inds.tolist() == [0, 1, 0, 1, 0, 0]
    assert result.labels.tolist() == [-1, 1, -1, 1, -1, -1]
    assert result.max_overlaps[[1, 3]].tolist() == pytest.approx([22 / 24, 100 / 384])
    no_gt = SimOTAAssigner().assign(pred, InstanceData(bboxes=torch.zeros(0, 4),
                                                       labels=torch.zeros(0).long()))
    assert (no_gt.gt_inds == 0).all() and (no_gt.max_overlaps == 0).all()
