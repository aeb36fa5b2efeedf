"""YOLOV3Head's targets for the whole batch (GridAssigner.assign_batch) equal the
image-by-image path's (assign + PseudoSampler, MMDetection's) exactly, with no host sync."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import record_syncing_ops
from detlab.registry import MODELS

IMG_H, IMG_W = 64, 80
STRIDES = (16, 8)
FEATMAP_SIZES = [(IMG_H // s, IMG_W // s) for s in STRIDES]


def yolo_head(one_hot_smoother=0., **assigner):
    assigner = dict(dict(pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0), **assigner)
    return MODELS.build(dict(
        type='YOLOV3Head', num_classes=3, in_channels=[4, 4], out_channels=[4, 4],
        anchor_generator=dict(type='YOLOAnchorGenerator',
                              base_sizes=[[(30, 30), (40, 20), (20, 40)],
                                          [(12, 12), (8, 16), (16, 8)]],
                              strides=list(STRIDES)),
        featmap_strides=list(STRIDES), one_hot_smoother=one_hot_smoother,
        train_cfg=dict(assigner=dict(type='GridAssigner', **assigner))))


def gt_batch(seed=0):
    """Four images: random boxes on integer pixels (IoU ties), boxes touching every
    border and corner, two gts sharing a grid cell on both levels (and an exact
    duplicate), a centre on a cell line; one image without gts."""
    generator = torch.Generator().manual_seed(seed)
    xy = (torch.rand(7, 2, generator=generator) * torch.tensor([IMG_W, IMG_H]) * 0.8).round()
    random = torch.cat([xy, (xy + 6 + torch.rand(7, 2, generator=generator) * 30).round()], 1)
    random = torch.minimum(random, torch.tensor([IMG_W, IMG_H, IMG_W, IMG_H]).float())
    borders = torch.tensor([[0., 0., 24., 20.], [56., 44., 80., 64.], [0., 30., 12., 64.],
                            [60., 0., 80., 14.], [0., 0., 80., 64.]])
    shared_cell = torch.tensor([[34., 34., 44., 46.], [33., 36., 46., 42.], [33., 36., 46., 42.],
                                [8., 8., 24., 40.]])  # centres (39, 40) twice, then (16, 24)
    boxes = [random, borders, shared_cell, torch.zeros(0, 4)]
    return [InstanceData(bboxes=b, labels=torch.randint(0, 3, (len(b), ), generator=generator))
            for b in boxes]


def targets_both_ways(head, gts):
    anchors = head.prior_generator.grid_priors(FEATMAP_SIZES)
    strides = torch.cat([torch.full((len(level), ), s) for level, s in zip(anchors, STRIDES)])
    anchors = torch.cat(anchors)
    batched = head._get_targets_batched(anchors, strides, FEATMAP_SIZES, gts)
    per_image = head._get_targets_by_image(anchors, strides, FEATMAP_SIZES, gts)
    return batched, per_image


CASES = [dict(),
         dict(neg_iou_thr=(0.1, 0.4), min_pos_iou=0.05, gt_max_assign_all=False),
         dict(pos_iou_thr=0.3, neg_iou_thr=0.3, min_pos_iou=0.2, one_hot_smoother=0.1)]


@pytest.mark.parametrize('seed', [0, 1])
@pytest.mark.parametrize('case', range(len(CASES)))
def test_batched_targets_equal_the_per_image_targets(case, seed):
    head = yolo_head(**CASES[case])
    gts = gt_batch(seed)
    (target_maps, neg_maps), (per_image_targets, per_image_negs) = targets_both_ways(head, gts)
    assert target_maps.shape == (4, sum(h * w * 3 for h, w in FEATMAP_SIZES), 8)
    assert torch.equal(target_maps, per_image_targets)
    assert torch.equal(neg_maps, per_image_negs)
    positives = target_maps[..., 4].sum(dim=1)
    assert (positives[:3] > 0).all() and positives[3] == 0
    assert neg_maps[3].all()  # no gts: every anchor negative
    # Positives and negatives never overlap; with a negative range, anchors of
    # IoU at most 0.1 are ignored.
    assert not (neg_maps.bool() & (target_maps[..., 4] > 0)).any()
    if isinstance(head.assigner.neg_iou_thr, tuple):
        assert ((neg_maps[:3] == 0) & (target_maps[:3, :, 4] == 0)).any()


def test_gts_sharing_a_cell_later_gt_wins_and_both_paths_agree():
    head = yolo_head()
    gts = [gt_batch()[2]]
    (target_maps, _), (per_image_targets, _) = targets_both_ways(head, gts)
    assert torch.equal(target_maps, per_image_targets)
    # The duplicate gts 1 and 2 tie everywhere: the later one takes the anchors.
    pred = InstanceData(priors=torch.cat(head.prior_generator.grid_priors(FEATMAP_SIZES)),
                        responsible_flags=torch.cat(head.responsible_flags(
                            FEATMAP_SIZES, gts[0].bboxes, torch.device('cpu'))))
    gt_inds = head.assigner.assign(pred, gts[0]).gt_inds
    assert (gt_inds == 3).any() and not (gt_inds == 2).any()


def test_batched_responsible_flags_equal_the_per_image_flags():
    head = yolo_head()
    gts = gt_batch()
    padded = torch.zeros(len(gts), 7, 4)
    valid = torch.zeros(len(gts), 7, dtype=torch.bool)
    for i, gt in enumerate(gts):
        padded[i, :len(gt)] = gt.bboxes
        valid[i, :len(gt)] = True
    padded[3] = 50.  # padding marks no cell, whatever its boxes
    flags = head.batch_responsible_flags(FEATMAP_SIZES, padded, valid)
    for image_flags, gt in zip(flags, gts):
        expected = torch.cat(head.responsible_flags(FEATMAP_SIZES, gt.bboxes,
                                                    torch.device('cpu')))
        assert torch.equal(image_flags, expected.bool())
    assert not flags[3].any()


def test_losses_equal_and_the_per_image_path_is_taken_for_other_samplers():
    head = yolo_head()
    generator = torch.Generator().manual_seed(0)
    feats = [torch.randn(4, 3 * 8, h, w, generator=generator) for h, w in FEATMAP_SIZES]
    gts = gt_batch()
    metas = [dict(img_shape=(IMG_H, IMG_W))] * 4
    batched = head.loss_by_feat(feats, gts, metas)
    head.sampler.supports_batch = False  # a sampler that draws image by image
    with record_syncing_ops() as recorder:
        per_image = head.loss_by_feat(feats, gts, metas)
    assert 'aten.nonzero' in recorder.syncing  # PseudoSampler.sample ran
    for key, values in batched.items():
        assert [v.item() for v in values] == [v.item() for v in per_image[key]], key


def test_batched_targets_never_read_values_back_to_the_host():
    head = yolo_head(neg_iou_thr=(0.1, 0.4), gt_max_assign_all=False)
    for assign_all in (False, True):
        head.assigner.gt_max_assign_all = assign_all
        with record_syncing_ops() as recorder:
            anchors = head.prior_generator.grid_priors(FEATMAP_SIZES)
            strides = torch.cat([torch.full((len(level), ), s)
                                 for level, s in zip(anchors, STRIDES)])
            head._get_targets_batched(torch.cat(anchors), strides, FEATMAP_SIZES, gt_batch())
        assert 'aten.scatter_reduce' in recorder.names  # the batched path ran
        assert not recorder.syncing, recorder.syncing
