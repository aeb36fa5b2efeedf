"""Helpers shared by heads (detlab/models/utils.py)."""
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.models.utils import (PAD_LABEL, bboxes_to_original, cls_reg_towers, conv_tower,
                                 empty_instances, filter_scores_and_topk, images_to_levels,
                                 levels_to_anchor_rows, multi_apply, pad_gt_instances,
                                 padded_positive_indices, select_single_mlvl,
                                 unpack_gt_instances)
from detlab.structures import DetDataSample


def test_multi_apply_regroups_outputs_per_position():
    sums, products = multi_apply(lambda a, b, scale: (a + b, a * b * scale), [1, 2], [3, 4],
                                 scale=10)
    assert sums == [4, 6] and products == [30, 80]


def test_images_to_levels_and_back_to_rows():
    per_image = [torch.arange(6), torch.arange(6) + 10]
    levels = images_to_levels(per_image, [4, 2])
    assert [tuple(level.shape) for level in levels] == [(2, 4), (2, 2)]
    assert levels[1].tolist() == [[4, 5], [14, 15]]
    assert torch.equal(images_to_levels(torch.stack(per_image), [4, 2])[0], levels[0])
    # (B, A*K, H, W) per level -> rows in (h, w, anchor) order.
    outputs = [torch.arange(2 * 2 * 2 * 3.).reshape(1, 2 * 2, 2, 3), torch.zeros(1, 2, 1, 1)]
    rows = levels_to_anchor_rows(outputs, 2)
    assert rows.shape == (1, 2 * 2 * 3 + 1, 2)
    assert rows[0, 1].tolist() == outputs[0][0, 2:, 0, 0].tolist()  # second anchor of cell 0


def test_filter_scores_and_topk_keeps_the_best_pairs_above_the_threshold():
    scores = torch.tensor([[0.1, 0.9], [0.6, 0.2], [0.3, 0.8]])
    priors = torch.arange(3.)[:, None]
    kept, labels, keep_idxs, results = filter_scores_and_topk(scores, 0.25, 2, dict(p=priors))
    assert kept.tolist() == pytest.approx([0.9, 0.8])
    assert labels.tolist() == [1, 1] and keep_idxs.tolist() == [0, 2]
    assert results['p'][:, 0].tolist() == [0., 2.]
    everything = filter_scores_and_topk(scores, 0.25, -1)
    assert len(everything[0]) == 4 and everything[3] is None


def test_select_single_mlvl_detaches_by_default():
    levels = [torch.ones(2, 3, requires_grad=True), torch.ones(2, 1, requires_grad=True)]
    picked = select_single_mlvl(levels, 1)
    assert [p.shape for p in picked] == [(3, ), (1, )] and not picked[0].requires_grad
    assert select_single_mlvl(levels, 0, detach=False)[0].requires_grad
    with pytest.raises(TypeError, match='list or tuple'):
        select_single_mlvl(levels[0], 0)


def test_unpack_gt_instances_gives_none_without_ignored_instances():
    sample = DetDataSample(metainfo=dict(img_shape=(8, 8)))
    sample.gt_instances = InstanceData(bboxes=torch.zeros(1, 4), labels=torch.zeros(1).long())
    gts, ignored, metas = unpack_gt_instances([sample])
    assert gts[0] is sample.gt_instances and ignored == [None] and metas[0]['img_shape'] == (8, 8)


def test_pad_gt_instances_marks_real_gts_and_keeps_a_slot_without_any():
    gts = [InstanceData(bboxes=torch.ones(2, 4), labels=torch.tensor([1, 2])),
           InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))]
    bboxes, labels, valid = pad_gt_instances(gts)
    assert bboxes.shape == (2, 2, 4) and labels.tolist() == [[1, 2], [PAD_LABEL, PAD_LABEL]]
    assert valid.tolist() == [[True, True], [False, False]]
    bboxes, labels, valid = pad_gt_instances(gts[1:])
    assert bboxes.shape == (1, 1, 4) and not valid.any()


def test_bboxes_to_original_divides_by_the_scale_factor_also_per_class():
    meta = dict(scale_factor=(2.0, 4.0))
    boxes = torch.tensor([[2., 4., 6., 8.]])
    assert bboxes_to_original(boxes, meta).tolist() == [[1., 1., 3., 2.]]
    per_class = boxes.repeat(1, 3)  # (N, 4 * classes), as an R-CNN head's boxes
    assert bboxes_to_original(per_class, meta).tolist() == [[1., 1., 3., 2.] * 3]
    with pytest.raises(KeyError, match='scale_factor'):
        bboxes_to_original(boxes, dict(img_shape=(8, 8)))


def test_empty_instances_for_boxes_and_masks():
    metas = [dict(ori_shape=(5, 7)), dict(ori_shape=(3, 2))]
    boxes = empty_instances(metas, torch.device('cpu'))
    assert [tuple(r.bboxes.shape) for r in boxes] == [(0, 4), (0, 4)]
    assert boxes[0].labels.dtype == torch.long and boxes[0].scores.shape == (0, )
    raw = empty_instances(metas[:1], torch.device('cpu'), num_classes=3, score_per_cls=True)
    assert raw[0].scores.shape == (0, 4)
    masks = empty_instances(metas, torch.device('cpu'), task_type='mask')
    assert masks[1].masks.shape == (0, 3, 2) and masks[1].masks.dtype == torch.bool
    with pytest.raises(ValueError, match="'bbox' or 'mask'"):
        empty_instances(metas, torch.device('cpu'), task_type='keypoints')


def test_conv_tower_keys_and_an_empty_tower_passes_through():
    tower = conv_tower(4, 8, 2, norm_cfg=dict(type='GN', num_groups=2))
    assert {'0.conv.weight', '0.gn.weight', '1.conv.weight'} <= set(tower.state_dict())
    assert tower[0].conv.bias is None  # 'auto' bias: none before a norm
    x = torch.randn(1, 4, 5, 5)
    assert tower(x).shape == (1, 8, 5, 5)
    assert conv_tower(4, 8, 0)(x) is x
    cls_convs, reg_convs = cls_reg_towers(4, 8, 1)
    assert cls_convs[0].conv.weight is not reg_convs[0].conv.weight


def test_padded_positive_indices_in_nonzeros_order_then_padding_without_syncing():
    from helpers import record_syncing_ops
    pos_mask = torch.tensor([[False, True, False, True], [True, False, False, True]])
    expected = pos_mask.reshape(-1).nonzero().squeeze(1)  # 1, 3, 4, 7
    with record_syncing_ops() as ops:
        indices, valid = padded_positive_indices(pos_mask, 6)
    assert not ops.syncing
    assert indices.tolist() == expected.tolist() + [0, 0]
    assert valid.tolist() == [True] * 4 + [False] * 2
    # More slots than elements: padded all the same; fewer slots than positives: the first.
    indices, valid = padded_positive_indices(pos_mask, 10)
    assert indices[:4].tolist() == expected.tolist() and valid.sum() == 4
    assert not indices[4:].any()
    indices, valid = padded_positive_indices(pos_mask, 3)
    assert indices.tolist() == expected[:3].tolist() and valid.all()
    indices, valid = padded_positive_indices(torch.zeros(0, dtype=torch.bool), 2)
    assert indices.tolist() == [0, 0] and not valid.any()
