"""The batched target path gives exactly the per-image targets, with no host sync."""
import pytest
import torch
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from helpers import record_syncing_ops
from detlab.models.utils import batch_valid_flags
from detlab.registry import MODELS, TASK_UTILS

STRIDES = [8, 16]


def head(assigner: dict, allowed_border: float = -1, pos_weight: float = -1,
         reg_decoded_bbox: bool = False):
    return MODELS.build(dict(
        type='RetinaHead', num_classes=3, in_channels=4, feat_channels=4, stacked_convs=0,
        reg_decoded_bbox=reg_decoded_bbox,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=2,
                              ratios=[0.5, 1.0, 2.0], strides=STRIDES),
        train_cfg=ConfigDict(assigner=dict(type='MaxIoUAssigner', **assigner),
                             sampler=dict(type='PseudoSampler'),
                             allowed_border=allowed_border, pos_weight=pos_weight)))


def random_batch(generator, num_gts, batch_hw=(64, 80)):
    """gts of several images (some may have none) and metas with their own shapes."""
    gts, metas = [], []
    for count in num_gts:
        img_h = int(torch.randint(24, batch_hw[0] + 1, (1, ), generator=generator))
        img_w = int(torch.randint(24, batch_hw[1] + 1, (1, ), generator=generator))
        xy = torch.rand(count, 2, generator=generator) * torch.tensor([img_w, img_h]) * 0.8
        wh = 4 + torch.rand(count, 2, generator=generator) * 30
        boxes = torch.cat([xy, xy + wh], dim=1).round()  # rounding makes IoU ties
        gts.append(InstanceData(bboxes=boxes,
                                labels=torch.randint(0, 3, (count, ), generator=generator)))
        metas.append(dict(img_shape=(img_h, img_w), pad_shape=(img_h + img_h % 8, img_w)))
    return gts, metas


def both_paths(test_head, gts, metas, batch_hw=(64, 80)):
    sizes = [torch.Size((-(-batch_hw[0] // s), -(-batch_hw[1] // s))) for s in STRIDES]
    anchors = torch.cat(test_head.prior_generator.grid_priors(sizes))
    assert test_head.targets_run_batched(gts, [None] * len(gts))
    batched = test_head.get_targets(anchors, sizes, gts, metas)
    test_head.sampler.supports_batch = False
    assert not test_head.targets_run_batched(gts, [None] * len(gts))
    per_image = test_head.get_targets(anchors, sizes, gts, metas)
    return batched, per_image


CASES = [
    dict(assigner=dict(pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0)),
    dict(assigner=dict(pos_iou_thr=0.5, neg_iou_thr=(0.1, 0.4), min_pos_iou=0.2,
                       gt_max_assign_all=False), allowed_border=0, pos_weight=2.0),
    dict(assigner=dict(pos_iou_thr=0.6, neg_iou_thr=0.3, match_low_quality=False),
         allowed_border=4, reg_decoded_bbox=True),
]


@pytest.mark.parametrize('case', range(len(CASES)))
@pytest.mark.parametrize('num_gts', [(3, 0, 7), (0, 0), (1, ), (12, 12, 1, 5)])
def test_batched_targets_equal_per_image_targets(case, num_gts):
    generator = torch.Generator().manual_seed(case * 100 + sum(num_gts))
    gts, metas = random_batch(generator, num_gts)
    batched, per_image = both_paths(head(**CASES[case]), gts, metas)
    assert torch.equal(batched.labels, per_image.labels)
    assert torch.equal(batched.label_weights, per_image.label_weights)
    assert torch.equal(batched.bbox_targets, per_image.bbox_targets)
    assert torch.equal(batched.bbox_weights, per_image.bbox_weights)
    assert float(batched.avg_factor) == per_image.avg_factor


def test_valid_flags_match_the_prior_generator_image_by_image():
    generator = head(CASES[0]['assigner']).prior_generator
    sizes, pads = [(8, 10), (4, 5)], [(64, 80), (40, 33), (9, 8)]
    batched = batch_valid_flags(generator.strides, generator.num_base_priors, sizes, pads,
                                torch.device('cpu'))
    for flags, pad in zip(batched, pads):
        assert torch.equal(flags, torch.cat(generator.valid_flags(sizes, pad)))


def test_ignore_regions_and_other_samplers_take_the_per_image_path():
    test_head = head(dict(pos_iou_thr=0.5, neg_iou_thr=0.4, ignore_iof_thr=0.5))
    gts = [InstanceData(bboxes=torch.ones(1, 4), labels=torch.tensor([0]))]
    ignore = [InstanceData(bboxes=torch.tensor([[0., 0., 9., 9.]]))]
    assert not test_head.assigner.can_assign_batch(gts, ignore)
    assert not test_head.targets_run_batched(gts, ignore)
    assert test_head.targets_run_batched(gts, [None])
    many_gts = head(dict(pos_iou_thr=0.5, neg_iou_thr=0.4, gpu_assign_thr=0))
    assert many_gts.assigner.can_assign_batch(gts)
    many_gts.assigner.gpu_assign_thr = 0.5  # more gts than this: assign() moves to the CPU
    assert not many_gts.targets_run_batched(gts, [None])


def test_assigners_and_samplers_declare_whether_they_run_batched():
    assert TASK_UTILS.build(dict(type='PseudoSampler')).supports_batch
    random = TASK_UTILS.build(dict(type='RandomSampler', num=8, pos_fraction=0.5))
    assert not random.supports_batch
    gts = [InstanceData(bboxes=torch.ones(1, 4), labels=torch.tensor([0]))]
    atss = TASK_UTILS.build(dict(type='ATSSAssigner', topk=9))
    assert not atss.can_assign_batch(gts)  # on the CPU: MMDetection's ties, image by image
    assert atss.can_assign_batch([InstanceData(bboxes=torch.ones(1, 4, device='meta'))])
    test_head = head(CASES[0]['assigner'])
    test_head.sampler = random
    assert not test_head.targets_run_batched(gts, [None])


def test_batched_path_never_reads_values_back_to_the_host():
    generator = torch.Generator().manual_seed(0)
    gts, metas = random_batch(generator, (4, 0, 9))
    test_head = head(**CASES[1])
    sizes = [torch.Size((8, 10)), torch.Size((4, 5))]
    anchors = torch.cat(test_head.prior_generator.grid_priors(sizes))
    with record_syncing_ops() as recorder:
        test_head.get_targets(anchors, sizes, gts, metas)
    assert 'aten.gather' in recorder.names  # the batched path ran
    assert not recorder.syncing


def random_sampler_head(case: dict, num: int):
    test_head = head(**case)
    test_head.sampler = TASK_UTILS.build(dict(type='RandomSampler', num=num, pos_fraction=0.5,
                                              neg_pos_ub=-1, add_gt_as_proposals=False))
    return test_head


@pytest.mark.parametrize('case', range(len(CASES)))
def test_random_sampler_off_the_cpu_draws_the_batch_at_once(monkeypatch, case):
    """Off the CPU (forced) the RPN's RandomSampler draws every image at once
    with no syncing op; with ``num`` above the anchors' count every positive
    and negative is drawn, so the targets equal the per-image path's."""
    import detlab.models.dense_heads.anchor_head as anchor_head_module
    generator = torch.Generator().manual_seed(case)
    gts, metas = random_batch(generator, (3, 0, 7))
    sizes = [torch.Size((8, 10)), torch.Size((4, 5))]
    test_head = random_sampler_head(CASES[case], num=10 ** 6)
    anchors = torch.cat(test_head.prior_generator.grid_priors(sizes))
    per_image = test_head.get_targets(anchors, sizes, gts, metas)
    assert not test_head.draws_whole_batch(anchors, gts, [None] * 3)
    monkeypatch.setattr(anchor_head_module, 'gathers_positives', lambda tensor: False)
    assert test_head.draws_whole_batch(anchors, gts, [None] * 3)
    with record_syncing_ops() as recorder:
        batched = test_head.get_targets(anchors, sizes, gts, metas)
    assert not recorder.syncing
    assert torch.equal(batched.labels, per_image.labels)
    assert torch.equal(batched.label_weights, per_image.label_weights)
    assert torch.equal(batched.bbox_targets, per_image.bbox_targets)
    assert torch.equal(batched.bbox_weights, per_image.bbox_weights)
    assert float(batched.avg_factor) == per_image.avg_factor

    # A draw of 16 per image: at most 8 positives, negatives filling up to 16.
    small = random_sampler_head(CASES[case], num=16)
    drawn = small.get_targets(anchors, sizes, gts, metas)
    counted = (drawn.label_weights > 0).sum(dim=1)
    positives = (drawn.labels < 3).sum(dim=1)
    candidate_pos = (per_image.labels < 3).sum(dim=1)
    candidate_neg = (per_image.label_weights > 0).sum(dim=1) - candidate_pos
    assert torch.equal(positives, candidate_pos.clamp(max=8))
    assert torch.equal(counted - positives, torch.minimum(candidate_neg, 16 - positives))
    assert counted.max() == 16
    assert ((drawn.label_weights > 0) <= (per_image.label_weights > 0)).all()  # candidates only
    assert torch.equal(drawn.labels[drawn.labels < 3], per_image.labels[drawn.labels < 3])
    expected = positives.clamp(min=1) + (counted - positives).clamp(min=1)
    assert float(drawn.avg_factor) == float(expected.sum())
    # Adding the gts as proposals changes the priors: that sampler stays per image.
    small.sampler.add_gt_as_proposals = True
    assert not small.draws_whole_batch(anchors, gts, [None] * 3)
