"""DetLocalVisualizer draws boxes where they are, and only there."""
import os

import mmcv
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from detlab.registry import VISUALIZERS
from detlab.structures import DetDataSample
from detlab.visualization import DetLocalVisualizer, adaptive_text_scales, get_palette

H, W = 64, 80
BOX = (10, 12, 50, 40)  # x1, y1, x2, y2
RED = (255, 0, 0)


def _visualizer(**kwargs):
    vis = DetLocalVisualizer(**kwargs)
    vis.dataset_meta = dict(classes=('cat', 'dog'), palette=[RED, (0, 255, 0)])
    return vis


def _sample(gt=True, pred_score=None):
    sample = DetDataSample(metainfo=dict(img_id=0))
    box = torch.tensor([BOX], dtype=torch.float32)
    if gt:
        sample.gt_instances = InstanceData(bboxes=box, labels=torch.tensor([0]))
    if pred_score is not None:
        sample.pred_instances = InstanceData(bboxes=box, labels=torch.tensor([1]),
                                             scores=torch.tensor([pred_score]))
    return sample


def test_draws_box_edges_and_leaves_far_pixels(tmp_path):
    vis = _visualizer(line_width=2, alpha=1.0)
    image = np.zeros((H, W, 3), dtype=np.uint8)
    vis.add_datasample('img', image, _sample(), draw_pred=False,
                       out_file=str(tmp_path / 'out.png'))
    drawn = vis.get_image()
    assert drawn.shape == (H, W, 3)
    x1, y1, x2, y2 = BOX
    mid_y, mid_x = (y1 + y2) // 2, (x1 + x2) // 2
    for y, x in [(mid_y, x1), (mid_y, x2), (y2, mid_x), (y1, x2 - 3)]:
        assert tuple(drawn[y, x]) == RED, (y, x)  # the class palette colour
    # Far outside the box, and inside it away from the label, nothing changes.
    for y, x in [(2, 2), (H - 3, W - 3), (y2 + 8, x1), (y2 - 6, x2 - 6)]:
        assert drawn[y, x].sum() == 0, (y, x)
    # The file on disk is BGR.
    on_disk = mmcv.imread(str(tmp_path / 'out.png'))
    assert tuple(on_disk[mid_y, x1]) == RED[::-1]


def test_gt_and_pred_side_by_side_with_score_threshold():
    vis = _visualizer()
    image = np.zeros((H, W, 3), dtype=np.uint8)
    vis.add_datasample('img', image, _sample(pred_score=0.2), pred_score_thr=0.3)
    drawn = vis.get_image()
    assert drawn.shape == (H, 2 * W, 3)
    assert drawn[:, :W].any()          # gt drawn on the left
    assert not drawn[:, W:].any()      # the low-score prediction is not drawn
    vis.add_datasample('img', image, _sample(gt=False, pred_score=0.9), draw_gt=False)
    pred_only = vis.get_image()
    assert pred_only.shape == (H, W, 3)
    assert tuple(pred_only[(BOX[1] + BOX[3]) // 2, BOX[0]])[1] > 0  # dog is green


def test_label_texts_name_classes_and_scores():
    vis = _visualizer()
    pred = _sample(gt=False, pred_score=0.875).pred_instances
    assert vis._label_texts(pred, ('cat', 'dog')) == ['dog: 87.5']
    assert vis._label_texts(pred, None) == ['class 1: 87.5']
    with pytest.raises(ValueError, match='1 names'):
        vis._label_texts(pred, ('cat', ))


def test_empty_instances_leave_image_unchanged():
    vis = _visualizer()
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long(),
                                         scores=torch.zeros(0))
    image = np.full((H, W, 3), 7, dtype=np.uint8)
    vis.add_datasample('img', image, sample, draw_gt=False)
    np.testing.assert_array_equal(vis.get_image(), image)


def test_adds_image_to_vis_backend(tmp_path):
    vis = VISUALIZERS.build(dict(type='DetLocalVisualizer', name='vis_backend_test',
                                 vis_backends=[dict(type='LocalVisBackend')],
                                 save_dir=str(tmp_path)))
    vis.dataset_meta = dict(classes=('cat', 'dog'))
    vis.add_datasample('val_img', np.zeros((H, W, 3), np.uint8), _sample(), step=3)
    assert os.listdir(tmp_path / 'vis_data' / 'vis_image') == ['val_img_3.png']


def test_rejects_non_rgb_image():
    with pytest.raises(ValueError, match=r'\(H, W, 3\)'):
        _visualizer().add_datasample('img', np.zeros((H, W), np.uint8), _sample())


def test_get_palette_forms():
    generated = get_palette(None, 4)
    assert len(generated) == 4 and generated == get_palette('random', 4)  # deterministic
    assert get_palette((1, 2, 3), 2) == [(1, 2, 3), (1, 2, 3)]
    assert get_palette('red', 1) == [(255, 0, 0)]  # RGB, not mmcv's BGR
    assert get_palette([(1, 1, 1), (2, 2, 2)], 2) == [(1, 1, 1), (2, 2, 2)]
    with pytest.raises(ValueError, match='at least 3'):
        get_palette([(1, 1, 1), (2, 2, 2)], 3)
    with pytest.raises(ValueError, match='colour name'):
        get_palette('not-a-colour', 1)


def test_adaptive_text_scales_bounds():
    np.testing.assert_allclose(adaptive_text_scales(np.array([0, 800, 15400, 30000, 1e6])),
                               [0.5, 0.5, 0.75, 1.0, 1.0])


def test_masks_are_filled_in_their_class_colour_and_must_fit_the_image():
    from detlab.structures.mask import PolygonMasks
    from detlab.visualization import jitter_color
    vis = _visualizer(alpha=1.0)
    image = np.zeros((H, W, 3), dtype=np.uint8)
    masks = torch.zeros(1, H, W, dtype=torch.bool)
    masks[0, 20:30, 20:40] = True
    sample = DetDataSample()
    sample.pred_instances = InstanceData(bboxes=torch.tensor([BOX], dtype=torch.float32),
                                         labels=torch.tensor([1]), scores=torch.tensor([0.9]),
                                         masks=masks)
    vis.add_datasample('img', image, sample, draw_gt=False)
    drawn = vis.get_image()
    # Inside: the dog colour (green), jittered per instance, the same on every run.
    assert tuple(drawn[25, 30]) == jitter_color((0, 255, 0), seed=0)
    assert drawn[25, 30, 1] > 150 and drawn[H - 3, W - 3].sum() == 0
    # Ground-truth polygons are drawn too; masks of another size are refused.
    polygon = np.array([20., 20., 40., 20., 40., 30., 20., 30.])
    sample.gt_instances = InstanceData(bboxes=torch.tensor([BOX], dtype=torch.float32),
                                       labels=torch.tensor([0]),
                                       masks=PolygonMasks([[polygon]], H, W))
    vis.add_datasample('img', image, sample, draw_pred=False)
    assert vis.get_image()[25, 30, 0] > 150  # red cat mask
    sample.pred_instances.masks = torch.zeros(1, H + 1, W, dtype=torch.bool)
    with pytest.raises(ValueError, match='do not fit'):
        vis.add_datasample('img', image, sample, draw_gt=False)
