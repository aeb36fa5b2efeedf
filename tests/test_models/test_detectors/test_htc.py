"""HybridTaskCascade and its RoI head, mask head and semantic head: MMDetection's losses,
boxes and pasted masks; the information flow, the semantic branch and configuration errors."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from tiny_htc import NUM_SEG_CLASSES, tiny_config, with_semantic_maps
from tiny_mask_rcnn import coco128_batch, detlab_samples

# MMDetection 3.3 on the same model and inputs (tools/dev/measure_htc.py): the state_dict of
# MODELS.build(tiny_config(with_semantic)) after torch.manual_seed(0) and init_weights(),
# loaded strictly into mmdet's HybridTaskCascade; coco128 images 9 and 49 (ellipse masks:
# polygons, then bitmaps; the synthetic semantic maps of tiny_htc.py); torch.manual_seed(1)
# before loss(), then predict(). detlab's losses, boxes and scores were bit-identical, its
# 2 x 100 pasted masks identical pixel for pixel.
MMDET = {
    False: dict(
        losses={'loss_rpn_cls': 0.6915388703346252, 'loss_rpn_bbox': 0.08053483814001083,
                's0.loss_cls': 1.430201768875122, 's0.acc': 4.6875,
                's0.loss_bbox': 0.15254497528076172, 's0.loss_mask': 0.874464750289917,
                's1.loss_cls': 0.7006336450576782, 's1.acc': 11.81640625,
                's1.loss_bbox': 0.05997232720255852, 's1.loss_mask': 0.5154287219047546,
                's2.loss_cls': 0.3518209755420685, 's2.acc': 1.5625,
                's2.loss_bbox': 0.018107933923602104, 's2.loss_mask': 0.20265771448612213},
        top3_boxes=[[0.039814695715904236, 436.2433776855469, 46.07014465332031, 479.949462890625],
                    [0.1985161304473877, 220.25514221191406, 136.9013214111328, 355.4344482421875],
                    [3.2995665073394775, 129.15151977539062, 139.5180206298828, 400.8468933105469]],
        top3_scores=[0.2709309458732605, 0.2699044346809387, 0.26868367195129395],
        top3_labels=[2, 2, 2], box_sums=[121328.09375, 94418.375],
        mask_pixels_per_image=[1395660, 1318920], top3_mask_pixels=[1612, 13317, 24877]),
    True: dict(
        losses={'loss_rpn_cls': 0.6934035420417786, 'loss_rpn_bbox': 0.08161850273609161,
                'loss_semantic_seg': 0.6560917496681213,
                's0.loss_cls': 1.478606939315796, 's0.acc': 1.26953125,
                's0.loss_bbox': 0.16414254903793335, 's0.loss_mask': 1.6365039348602295,
                's1.loss_cls': 0.7106541395187378, 's1.acc': 3.80859375,
                's1.loss_bbox': 0.045844871550798416, 's1.loss_mask': 1.1111088991165161,
                's2.loss_cls': 0.3340042233467102, 's2.acc': 36.62109375,
                's2.loss_bbox': 0.003290535183623433, 's2.loss_mask': 0.4612346291542053},
        top3_boxes=[[316.0680847167969, 253.95872497558594, 451.4857177734375, 322.3012390136719],
                    [292.2633972167969, 277.85504150390625, 427.62127685546875, 346.16241455078125],
                    [340.5633544921875, 277.889404296875, 475.753662109375, 346.0791320800781]],
        top3_scores=[0.28566649556159973, 0.2846739590167999, 0.2795698344707489],
        top3_labels=[1, 1, 1], box_sums=[143901.234375, 106744.6953125],
        mask_pixels_per_image=[2274291, 1501783], top3_mask_pixels=[8630, 8799, 8713]),
}


def build(with_semantic=True, max_proposals=None, **roi_head):
    cfg = tiny_config(with_semantic)
    cfg['roi_head'].update(roi_head)
    if max_proposals:  # fewer RoIs: cheaper where the numbers are not pinned
        cfg['train_cfg']['rpn_proposal']['max_per_img'] = max_proposals
        cfg['test_cfg']['rpn']['max_per_img'] = max_proposals
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def samples_for(annotations, with_semantic=True):
    samples = detlab_samples(annotations)
    return with_semantic_maps(samples, annotations) if with_semantic else samples


@pytest.mark.parametrize('with_semantic', [False, True], ids=['without_semantic', 'semantic'])
def test_losses_boxes_and_masks_equal_mmdetections(coco128, with_semantic):
    inputs, annotations = coco128_batch(coco128)
    model = build(with_semantic)
    assert type(model).__name__ == 'HybridTaskCascade'
    assert model.with_semantic == with_semantic
    model.train()
    torch.manual_seed(1)
    _, log_vars = model.parse_losses(model.loss(inputs, samples_for(annotations, with_semantic)))
    expected = MMDET[with_semantic]
    assert set(log_vars) == set(expected['losses']) | {'loss'}  # 'loss': their total
    assert {key: log_vars[key].item() for key in expected['losses']} == pytest.approx(
        expected['losses'], rel=1e-5, abs=1e-7)
    model.eval()
    with torch.no_grad():
        results = [r.pred_instances
                   for r in model.predict(inputs, samples_for(annotations, with_semantic))]
    first = results[0]
    assert [len(r) for r in results] == [100, 100]
    assert first.labels[:3].tolist() == expected['top3_labels']
    assert first.bboxes[:3].tolist() == [pytest.approx(box, abs=1e-3)
                                         for box in expected['top3_boxes']]
    assert first.scores[:3].tolist() == pytest.approx(expected['top3_scores'], abs=1e-6)
    assert [float(r.bboxes.sum()) for r in results] == pytest.approx(expected['box_sums'],
                                                                     rel=1e-6)
    assert first.masks.shape == (100, 480, 640) and first.masks.dtype == torch.bool
    assert [int(r.masks.sum()) for r in results] == expected['mask_pixels_per_image']
    assert first.masks[:3].flatten(1).sum(1).tolist() == expected['top3_mask_pixels']


def test_mask_heads_pass_features_down_the_stages():
    head_cfg = dict(type='HTCMaskHead', num_convs=1, in_channels=4, conv_out_channels=4,
                    num_classes=2)
    first = MODELS.build(dict(head_cfg, with_conv_res=False))
    second = MODELS.build(head_cfg)
    assert 'conv_res.conv.weight' in second.state_dict()
    assert not any(k.startswith('conv_res') for k in first.state_dict())
    feats = torch.randn(3, 4, 7, 7)
    logits, res_feat = first(feats)
    assert logits.shape == (3, 2, 14, 14) and res_feat.shape == (3, 4, 7, 7)
    assert torch.equal(first(feats, return_feat=False), logits)
    assert torch.equal(first(feats, return_logits=False), res_feat)
    # The previous stage's features change this stage's output through conv_res only.
    with_flow = second(feats, res_feat, return_feat=False)
    assert not torch.allclose(with_flow, second(feats, return_feat=False))
    torch.nn.init.zeros_(second.conv_res.conv.weight)
    torch.nn.init.zeros_(second.conv_res.conv.bias)
    assert torch.allclose(second(feats, res_feat, return_feat=False),
                          second(feats, return_feat=False))
    with pytest.raises(ValueError, match='with_conv_res=False'):
        first(feats, res_feat)
    with pytest.raises(ValueError, match='at least one'):
        first(feats, return_logits=False, return_feat=False)


def test_fused_semantic_head_fuses_at_one_level_and_ignores_255():
    head = MODELS.build(dict(type='FusedSemanticHead', num_ins=3, fusion_level=1,
                             seg_scale_factor=1 / 8, num_convs=1, in_channels=4,
                             conv_out_channels=6, num_classes=NUM_SEG_CLASSES))
    head.init_weights()
    feats = [torch.randn(2, 4, 16 // 2**i, 24 // 2**i) for i in range(3)]
    logits, semantic_feat = head(feats)
    assert logits.shape == (2, NUM_SEG_CLASSES, 8, 12)
    assert semantic_feat.shape == (2, 6, 8, 12)
    labels = torch.randint(0, NUM_SEG_CLASSES, (2, 1, 64, 96), dtype=torch.uint8)
    loss = head.loss(logits, labels)
    # Labels are taken at stride 8 (nearest): pixel (8i, 8j) of the map.
    picked = labels[:, 0, ::8, ::8].long()
    expected = torch.nn.functional.cross_entropy(logits, picked) * 0.2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    ignored = labels.clone()
    ignored[0] = 255
    per_pixel = torch.nn.functional.cross_entropy(logits[1:], picked[1:], reduction='sum')
    # The mean runs over every pixel, the ignored ones included, as MMDetection's.
    assert head.loss(logits, ignored).item() == pytest.approx(
        0.2 * per_pixel.item() / picked.numel(), rel=1e-5)
    with pytest.warns(UserWarning, match='deprecated'):
        old = MODELS.build(dict(type='FusedSemanticHead', num_ins=3, fusion_level=1,
                                ignore_label=7, loss_weight=0.5))
    assert old.criterion.ignore_index == 7 and old.criterion.loss_weight == 0.5
    with pytest.raises(ValueError, match='fusion_level=3'):
        MODELS.build(dict(type='FusedSemanticHead', num_ins=3, fusion_level=3))


def test_semantic_features_reach_the_mask_branch_only_where_asked(coco128):
    inputs, annotations = coco128_batch(coco128)
    expected = MMDET[True]['losses']
    model = build(semantic_fusion=('bbox', )).train()
    torch.manual_seed(1)
    _, log_vars = model.parse_losses(model.loss(inputs, samples_for(annotations)))
    # The box branch and the segmentation are those of the model fusing into both branches.
    for key in ('loss_semantic_seg', 's0.loss_cls', 's0.loss_bbox'):
        assert log_vars[key].item() == pytest.approx(expected[key], rel=1e-5), key
    assert log_vars['s0.loss_mask'].item() != pytest.approx(expected['s0.loss_mask'], rel=1e-3)


def test_every_head_trains_and_tensor_mode_gives_the_last_stages_masks(coco128):
    inputs, annotations = coco128_batch(coco128)
    model = build(max_proposals=100)
    model.train()
    model.parse_losses(model.loss(inputs, samples_for(annotations)))[0].backward()
    roi_head = model.roi_head
    assert roi_head.semantic_head.conv_logits.weight.grad.abs().sum() > 0
    assert roi_head.semantic_head.conv_embedding.conv.weight.grad.abs().sum() > 0
    for stage in range(3):
        assert roi_head.bbox_head[stage].fc_cls.weight.grad.abs().sum() > 0, stage
        assert roi_head.mask_head[stage].conv_logits.weight.grad.abs().sum() > 0, stage
        if stage:
            assert roi_head.mask_head[stage].conv_res.conv.weight.grad.abs().sum() > 0, stage
    model.eval()
    samples = samples_for(annotations)
    with torch.no_grad():
        (outputs, ) = model(inputs, samples, mode='tensor')
        cls_scores, bbox_preds, mask_probs = outputs
        num_proposals = [len(s) for s in cls_scores]
        assert num_proposals == [100, 100]
        assert [m.shape for m in mask_probs] == [(n, 3, 28, 28) for n in num_proposals]
        # The last stage's head after the flow through the others, not an average.
        x = model.extract_feat(inputs)
        rois = torch.cat([torch.zeros(4, 1), torch.tensor([[10., 10., 60., 50.]]).repeat(4, 1)],
                         dim=1)
        semantic_feat = roi_head.semantic_head(x)[1]
        last = roi_head._mask_forward(2, x, rois, semantic_feat)['mask_preds'].sigmoid()
        assert torch.equal(roi_head._stage_mask_probs(x, rois, semantic_feat), last)


def test_no_proposals_give_empty_boxes_and_masks():
    from tiny_faster_rcnn import inputs_and_samples
    model = build(with_semantic=False).eval()
    inputs, samples = inputs_and_samples()
    for sample in samples:
        sample.proposals = InstanceData(bboxes=torch.zeros(0, 4))
    with torch.no_grad():
        preds = [s.pred_instances for s in model.predict(inputs, samples)]
    assert [len(p) for p in preds] == [0, 0]
    assert preds[0].masks.shape == (0, 32, 48)


def test_configuration_errors_name_the_key():
    roi_head = tiny_config()['roi_head']
    with pytest.raises(ValueError, match='semantic_roi_extractor'):
        MODELS.build(dict(roi_head, semantic_roi_extractor=None))
    with pytest.raises(ValueError, match='semantic_fusion'):
        MODELS.build(dict(roi_head, semantic_fusion=('bbox', 'masks')))
    heads = [dict(head, with_conv_res=False) for head in roi_head['mask_head']]
    with pytest.raises(ValueError, match=r'stages \[1, 2\].*with_conv_res=True'):
        MODELS.build(dict(roi_head, mask_head=heads))
    assert not MODELS.build(dict(roi_head, mask_head=heads, mask_info_flow=False)).mask_info_flow
    from tiny_faster_rcnn import inputs_and_samples
    model = build()
    inputs, samples = inputs_and_samples()  # no gt_sem_seg
    with pytest.raises(KeyError, match='gt_sem_seg'):
        model.roi_head.loss(model.extract_feat(inputs),
                            [InstanceData(bboxes=torch.zeros(0, 4))] * 2, samples)


def test_an_image_without_objects_trains_with_finite_losses():
    from mmengine.structures import PixelData

    from detlab.structures.mask import BitmapMasks
    from tiny_faster_rcnn import inputs_and_samples
    model = build(max_proposals=50).train()
    inputs, samples = inputs_and_samples()  # the second image has no gt
    for sample in samples:
        h, w = sample.batch_input_shape
        masks = torch.zeros(len(sample.gt_instances), h, w, dtype=torch.uint8)
        for mask, (x1, y1, x2, y2) in zip(masks, sample.gt_instances.bboxes.int().tolist()):
            mask[y1:y2, x1:x2] = 1
        sample.gt_instances.masks = BitmapMasks(masks.numpy(), h, w)
        sample.gt_sem_seg = PixelData(sem_seg=masks.sum(0, keepdim=True).clamp(max=1))
    torch.manual_seed(1)
    losses = model.loss(inputs, samples)
    assert {'loss_semantic_seg', 's2.loss_mask'} <= set(losses)
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
