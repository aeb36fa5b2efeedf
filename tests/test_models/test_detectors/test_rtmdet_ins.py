"""RTMDet-Ins: MMDetection 3.3's losses, detections and masks for the same weights and inputs,
and the head's behaviour on edge cases.

The numbers below were measured by tools/dev/measure_rtmdet_ins.py on MMDetection 3.3's
RTMDet-Ins-tiny built from its own config (tests/data/mmdet_3.3_configs/rtmdet/), with the
seeded weights and the coco128 batch (two photos fitted into 320 x 320 and padded) of
rtmdet_parity.py, each object's mask the ellipse inscribed in its box (polygons on the first
image, bitmaps on the second): detections in eval mode rescaled to the original photo (count,
score sum, top 5, mask pixel counts and a digest of all masks: detlab's masks are MMDetection's
pixel for pixel), then the losses in train mode.
"""
import copy
import hashlib

import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.dense_heads import rtmdet_ins_head
from detlab.models.losses import DiceLoss
from detlab.models.task_modules.assigners import center_of_mass
from detlab.registry import MODELS
from detlab.structures import DetDataSample
from detlab.structures.mask import BitmapMasks, PolygonMasks
from helpers import REPO_ROOT, require_coco128
from rtmdet_parity import coco128_batch, parity_model_cfg, parity_samples, parity_state_dict

SIZE = 320
MASK_TYPES = (BitmapMasks, PolygonMasks)
MMDET_REFERENCE = {
    'detections': [{'boxes': [[505.09405517578125, 250.4538116455078, 547.7968139648438,
                               295.3890380859375],
                              [516.7120361328125, 278.8431091308594, 563.9451904296875,
                               331.697509765625],
                              [391.0874328613281, 109.67628479003906, 436.5243225097656,
                               158.62327575683594],
                              [384.1838684082031, 93.65634155273438, 437.219970703125,
                               153.51673889160156],
                              [476.79302978515625, 219.91244506835938, 530.914794921875,
                               273.61639404296875]],
                    'labels': [26, 26, 13, 74, 40],
                    'mask_digest': 'cd2c27baea6c9bde',
                    'mask_pixel_sum': 21355208,
                    'mask_shape': [100, 480, 640],
                    'num': 100,
                    'score_sum': 97.75381469726562,
                    'scores': [0.9990621209144592, 0.9981921315193176, 0.9977972507476807,
                               0.9964860677719116, 0.996073842048645],
                    'top_mask_pixels': [166513, 304176, 299272, 253231, 196954]},
                   {'boxes': [[59.1792106628418, 331.26123046875, 83.50679779052734,
                               367.52783203125],
                              [66.05277252197266, 323.3290100097656, 101.17242431640625,
                               363.36212158203125],
                              [68.1521224975586, 363.0294189453125, 103.3214340209961,
                               399.08978271484375],
                              [50.60011291503906, 336.8168640136719, 100.87384796142578,
                               370.5802307128906],
                              [241.63980102539062, 262.8961181640625, 288.38897705078125,
                               305.0811767578125]],
                    'labels': [26, 36, 26, 26, 33],
                    'mask_digest': '866d0a342df26eab',
                    'mask_pixel_sum': 12197755,
                    'mask_shape': [100, 500, 381],
                    'num': 100,
                    'score_sum': 81.51957702636719,
                    'scores': [0.9921051263809204, 0.9786626696586609, 0.9754326939582825,
                               0.9545696377754211, 0.9503633379936218],
                    'top_mask_pixels': [90175, 116682, 138130, 190500, 182328]}],
    'level_losses': {'loss_bbox': [0.4261576235294342, 0.3035775423049927,
                                   0.49132445454597473],
                     'loss_cls': [262.3042907714844, 48.44203186035156, 9.730088233947754],
                     'loss_mask': 1.7314904928207397}}


def mask_digest(masks: torch.Tensor) -> str:
    """First 16 hex digits of the SHA-256 of the (N, H, W) bool masks' bytes."""
    return hashlib.sha256(masks.to(torch.uint8).contiguous().numpy().tobytes()).hexdigest()[:16]


def build():
    return MODELS.build(parity_model_cfg(REPO_ROOT, 'ins-tiny'))


def test_losses_detections_and_masks_equal_mmdetections():
    inputs, metas, gts = coco128_batch(require_coco128(), SIZE)
    torch.manual_seed(0)
    model = build()
    parity_state_dict(model, inputs)

    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, parity_samples(DetDataSample, metas, gts, MASK_TYPES),
                                rescale=True)
    for result, expected in zip(results, MMDET_REFERENCE['detections']):
        pred = result.pred_instances
        assert len(pred) == expected['num']
        assert pred.scores.sum().item() == pytest.approx(expected['score_sum'], rel=1e-5)
        assert pred.labels[:5].tolist() == expected['labels']
        assert torch.allclose(pred.scores[:5], torch.tensor(expected['scores']), atol=1e-6)
        assert torch.allclose(pred.bboxes[:5], torch.tensor(expected['boxes']), atol=1e-3)
        assert pred.masks.dtype == torch.bool
        assert list(pred.masks.shape) == expected['mask_shape']
        assert pred.masks[:5].flatten(1).sum(1).tolist() == expected['top_mask_pixels']
        assert int(pred.masks.sum()) == expected['mask_pixel_sum']
        assert mask_digest(pred.masks) == expected['mask_digest']

    model.train()
    samples = parity_samples(DetDataSample, metas, gts, MASK_TYPES)
    losses = model.loss(inputs, copy.deepcopy(samples))
    assert set(losses) == {'loss_cls', 'loss_bbox', 'loss_mask'}
    for key, expected in MMDET_REFERENCE['level_losses'].items():
        got = [v.item() for v in losses[key]] if isinstance(expected, list) else \
            losses[key].item()
        assert got == pytest.approx(expected, rel=1e-5), key
    (sum(losses['loss_cls']) + sum(losses['loss_bbox']) + losses['loss_mask']).backward()
    head = model.bbox_head
    assert head.rtm_kernel[0].weight.grad.abs().sum() > 0
    assert head.mask_head.projection.weight.grad.abs().sum() > 0


def test_sepbn_head_layout_is_mmdetections():
    head = build().bbox_head
    # reg_convs are the class towers themselves; the tower convs are shared by the levels.
    assert head.reg_convs[1] is head.cls_convs[1]
    assert head.cls_convs[2][0].conv is head.cls_convs[0][0].conv
    assert head.kernel_convs[1][0].conv is not head.kernel_convs[0][0].conv
    assert head.num_gen_params == (10 * 8 + 8 * 8 + 8) + (8 + 8 + 1) == 169
    assert head.rtm_kernel[0].out_channels == 169
    assert not hasattr(head, 'scales')
    head.init_weights()
    assert all(torch.all(reg.bias == 1) for reg in head.rtm_reg)


def tiny_inputs_and_samples(num_gts=(2, 0), size=64):
    samples = []
    for count in num_gts:
        meta = dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size),
                    scale_factor=(1.0, 1.0), batch_input_shape=(size, size))
        sample = DetDataSample(metainfo=meta)
        boxes = torch.tensor([[4., 6., 40., 30.], [20., 20., 60., 62.]])[:count]
        bitmaps = torch.zeros(count, size, size, dtype=torch.uint8)
        for i, (x1, y1, x2, y2) in enumerate(boxes.int().tolist()):
            bitmaps[i, y1:y2, x1:x2] = 1
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([1, 2])[:count],
                                           masks=BitmapMasks(bitmaps.numpy(), size, size))
        samples.append(sample)
    return torch.randn(len(num_gts), 3, size, size), samples


@pytest.mark.parametrize('head_type', ['RTMDetInsSepBNHead', 'RTMDetInsHead'])
def test_training_with_and_without_gts(head_type):
    cfg = parity_model_cfg(REPO_ROOT, 'ins-tiny')
    if head_type == 'RTMDetInsHead':
        cfg.bbox_head.pop('share_conv')
        cfg.bbox_head.update(type=head_type, with_objectness=True, pred_kernel_size=3,
                             norm_cfg=dict(type='GN', num_groups=32, requires_grad=True))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    inputs, samples = tiny_inputs_and_samples()
    losses = model.loss(inputs, samples)
    assert losses['loss_mask'].item() > 0
    assert all(torch.isfinite(v).all() for v in losses['loss_cls'] + losses['loss_bbox'])
    inputs, samples = tiny_inputs_and_samples((0, 0))
    losses = model.loss(inputs, samples)
    assert losses['loss_mask'].item() == 0
    losses['loss_mask'].backward()  # still part of the graph
    # Unpadded masks cannot be compared with the predictions: the error says what to set.
    inputs, samples = tiny_inputs_and_samples((2, 0))
    samples[0].gt_instances.masks = samples[0].gt_instances.masks.crop(
        torch.tensor([0, 0, 48, 48]).numpy())
    with pytest.raises(ValueError, match='pad_mask=True'):
        model.loss(inputs, samples)


def test_masks_are_the_same_chunk_by_chunk_and_empty_results_have_the_image_shape(monkeypatch):
    torch.manual_seed(0)
    model = build()
    model.init_weights()
    model.eval()
    model.bbox_head.test_cfg.score_thr = 0.0  # random weights: keep detections
    inputs, samples = tiny_inputs_and_samples((2, 2), size=96)
    for sample in samples:
        sample.set_metainfo(dict(ori_shape=(190, 200), scale_factor=(96 / 200, 96 / 190)))
    with torch.no_grad():
        whole = model.predict(inputs, copy.deepcopy(samples), rescale=True)
        monkeypatch.setattr(rtmdet_ins_head, 'MASK_CHUNK_BYTES', 1)  # one mask per chunk
        chunked = model.predict(inputs, copy.deepcopy(samples), rescale=True)
    for a, b in zip(whole, chunked):
        assert len(a.pred_instances) == 100
        assert a.pred_instances.masks.shape == (100, 190, 200)
        assert torch.equal(a.pred_instances.masks, b.pred_instances.masks)
    model.bbox_head.test_cfg.score_thr = 2.0  # no score passes
    with torch.no_grad():
        empty = model.predict(inputs, samples, rescale=True)[0].pred_instances
    assert empty.masks.shape == (0, 190, 200) and empty.bboxes.shape == (0, 4)


def test_center_of_mass_and_dice_loss():
    masks = torch.zeros(3, 5, 6, dtype=torch.bool)
    masks[0, 1:3, 2:6] = True  # rows 1-2, columns 2-5
    masks[1, 4, 0] = True
    centers = center_of_mass(masks)
    assert centers.tolist() == [[3.5, 1.5], [0.0, 4.0], [0.0, 0.0]]  # x, y; empty: 0, 0

    pred = torch.tensor([[0.0, 10.0, -10.0, 10.0]])
    target = torch.tensor([[0, 1, 0, 1]])
    prob = pred.sigmoid()
    inter = (prob * target).sum()
    expected = 1 - 2 * inter / ((prob.pow(2).sum() + 1e-3) + (2 + 1e-3))
    assert DiceLoss()(pred, target).item() == pytest.approx(expected.item(), rel=1e-6)
    naive = 1 - (2 * inter + 1e-3) / (prob.sum() + 2 + 1e-3)
    naive_loss = DiceLoss(naive_dice=True)(pred, target)
    assert naive_loss.item() == pytest.approx(naive.item(), rel=1e-6)
    loss = DiceLoss(loss_weight=2.0)(pred.repeat(2, 1), target.repeat(2, 1), avg_factor=4)
    assert loss.item() == pytest.approx(2.0 * 2 * expected.item() / 4, rel=1e-5)
    with pytest.raises(ValueError, match='same shape'):
        DiceLoss()(pred, target[:, :3])
    with pytest.raises(ValueError, match='use_sigmoid'):
        DiceLoss(use_sigmoid=False)
