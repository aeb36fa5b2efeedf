import math

import pytest
import torch
from torchvision.ops import nms as tv_nms

from detlab.models.layers import batched_nms, multiclass_nms, nms, soft_nms

METHODS = {'naive': 0, 'linear': 1, 'gaussian': 2}


def soft_nms_reference(boxes, scores, iou_threshold, sigma, min_score, method, offset=0):
    """A line-by-line scalar transcription of mmcv's softnms_cpu kernel (nms.cpp)."""
    b = [list(map(float, row)) for row in boxes.tolist()]
    sc = [float(s) for s in scores.tolist()]
    area = [(x2 - x1 + offset) * (y2 - y1 + offset) for x1, y1, x2, y2 in b]
    ind = list(range(len(sc)))
    dets, n, i = [], len(sc), 0
    while i < n:
        best = i
        for pos in range(i + 1, n):
            if sc[best] < sc[pos]:
                best = pos
        for col in (b, sc, area, ind):
            col[i], col[best] = col[best], col[i]
        dets.append(b[i] + [sc[i]])
        pos = i + 1
        while pos < n:
            w = max(0.0, min(b[i][2], b[pos][2]) - max(b[i][0], b[pos][0]) + offset)
            h = max(0.0, min(b[i][3], b[pos][3]) - max(b[i][1], b[pos][1]) + offset)
            inter = w * h
            ovr = inter / (area[i] + area[pos] - inter)
            weight = 1.0
            if METHODS[method] == 0 and ovr >= iou_threshold:
                weight = 0.0
            elif METHODS[method] == 1 and ovr >= iou_threshold:
                weight = 1 - ovr
            elif METHODS[method] == 2:
                weight = math.exp(-(ovr * ovr) / sigma)
            sc[pos] *= weight
            if sc[pos] < min_score:
                for col in (b, sc, area, ind):
                    col[pos] = col[n - 1]
                n -= 1
                pos -= 1
            pos += 1
        i += 1
    return torch.tensor(dets).reshape(-1, 5), torch.tensor(ind[:n], dtype=torch.long)


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 40
    wh = torch.rand(n, 2, generator=g) * 30 + 2
    # Quantised scores make ties, which the kernel breaks by slot order.
    scores = (torch.rand(n, generator=g) * 10).floor() / 10 + 0.05
    return torch.cat([xy, xy + wh], 1), scores


def test_nms_equals_torchvision_and_honours_threshold_and_max_num():
    boxes, scores = random_boxes(60, 0)
    dets, keep = nms(boxes, scores, 0.5)
    assert torch.equal(keep, tv_nms(boxes, scores, 0.5))
    assert torch.equal(dets[:, 4], scores[keep])
    dets, keep = nms(boxes, scores, 0.5, score_threshold=0.5, max_num=3)
    assert len(keep) <= 3 and bool((scores[keep] > 0.5).all())
    high = (scores > 0.5).nonzero(as_tuple=True)[0]
    assert torch.equal(keep, high[tv_nms(boxes[high], scores[high], 0.5)][:3])


def test_nms_refuses_offset_one():
    with pytest.raises(ValueError, match='offset=1'):
        nms(torch.zeros(1, 4), torch.ones(1), 0.5, offset=1)


def test_soft_nms_hand_computed_decays():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 5.]])  # IoU 0.5
    scores = torch.tensor([0.9, 0.8])
    dets, keep = soft_nms(boxes, scores, iou_threshold=0.3, method='linear')
    assert keep.tolist() == [0, 1]
    assert dets[:, 4].tolist() == pytest.approx([0.9, 0.4])
    dets, _ = soft_nms(boxes, scores, sigma=0.5, method='gaussian')
    assert dets[1, 4].item() == pytest.approx(0.8 * math.exp(-0.25 / 0.5))
    dets, keep = soft_nms(boxes, scores, iou_threshold=0.3, method='naive')
    assert keep.tolist() == [0]


@pytest.mark.parametrize('method', ['naive', 'linear', 'gaussian'])
def test_soft_nms_follows_mmcv_kernel_step_by_step(method):
    for seed in range(3):
        boxes, scores = random_boxes(80, seed)
        dets, keep = soft_nms(boxes, scores, iou_threshold=0.3, sigma=0.5, min_score=0.05,
                              method=method)
        ref_dets, ref_keep = soft_nms_reference(boxes, scores, 0.3, 0.5, 0.05, method)
        assert torch.equal(keep, ref_keep)
        assert torch.allclose(dets, ref_dets, atol=1e-5)


def test_soft_nms_empty_input():
    dets, keep = soft_nms(torch.zeros(0, 4), torch.zeros(0))
    assert dets.shape == (0, 5) and keep.shape == (0,)


def test_batched_nms_class_aware_and_agnostic():
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 0., 11., 10.], [0., 0., 10., 10.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    labels = torch.tensor([0, 0, 1])
    _, keep = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == [0, 2]
    _, keep = batched_nms(boxes, scores, labels,
                          dict(type='nms', iou_threshold=0.5, class_agnostic=True))
    assert keep.tolist() == [0]
    _, keep = batched_nms(boxes, scores, labels, dict(type='nms', iou_threshold=0.5),
                          class_agnostic=True)
    assert keep.tolist() == [0]


def test_batched_nms_split_path_equals_single_call():
    boxes, scores = random_boxes(200, 4)
    labels = torch.arange(200) % 3
    cfg = dict(type='soft_nms', iou_threshold=0.3, min_score=0.05)
    dets_one, keep_one = batched_nms(boxes, scores, labels, cfg)
    dets_split, keep_split = batched_nms(boxes, scores, labels, dict(cfg, split_thr=10))
    assert set(keep_one.tolist()) == set(keep_split.tolist())
    assert torch.allclose(dets_one[:, 4].sort().values, dets_split[:, 4].sort().values)


def test_batched_nms_none_sorts_and_bad_config_is_named():
    boxes, scores = random_boxes(5, 1)
    dets, keep = batched_nms(boxes, scores, torch.zeros(5, dtype=torch.long), None)
    assert torch.equal(dets[:, 4], scores.sort(descending=True).values)
    with pytest.raises(ValueError, match="'nms_rotated'.*valid types"):
        batched_nms(boxes, scores, torch.zeros(5, dtype=torch.long),
                    dict(type='nms_rotated', iou_threshold=0.5))
    with pytest.raises(ValueError, match='iou_thr'):
        batched_nms(boxes, scores, torch.zeros(5, dtype=torch.long),
                    dict(type='nms', iou_thr=0.5))


def test_multiclass_nms_thresholds_factors_and_inds():
    boxes = torch.tensor([[0., 0., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([[0.9, 0.2, 0.0], [0.1, 0.6, 0.0]])  # last column: background
    dets, labels, inds = multiclass_nms(boxes, scores, 0.3, dict(type='nms', iou_threshold=0.5),
                                        score_factors=torch.tensor([0.5, 1.0]), return_inds=True)
    assert labels.tolist() == [1, 0]
    assert dets[:, 4].tolist() == pytest.approx([0.6, 0.45])
    assert inds.tolist() == [3, 0]  # index into the (box, class) grid
    dets, labels = multiclass_nms(boxes, scores, 0.95, dict(type='nms', iou_threshold=0.5))
    assert dets.shape == (0, 5) and labels.shape == (0,)
