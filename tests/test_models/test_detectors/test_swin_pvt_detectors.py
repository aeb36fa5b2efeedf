"""RetinaNet with Swin-T and with PVTv2-b0, from MMDetection's configs, gives MMDetection
3.3's losses and detections for the same weights on a real photo."""
import copy

import pytest
import torch
from mmengine.config import Config

from helpers import REPO_ROOT
from detlab.registry import MODELS
from detlab.utils import adopt_default_scope
from tiny_mask_rcnn import coco128_batch, detlab_samples

SCALE = (320, 240)
# tools/dev/measure_swin_pvt_detectors.py: detlab's model (torch.manual_seed(0),
# init_weights()) loaded strictly into MMDetection's, coco128 image 9 at 320x256,
# torch.manual_seed(1) before loss(), score_thr 0; MMDetection's losses and detections
# (number, sum of box coordinates, sum of scores, first three labels and boxes). detlab's
# were equal to them exactly there (0.0 difference in every loss, box and score).
MMDET_RESULTS = {
    'swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py': dict(
        losses=dict(loss_cls=1.132705807685852, loss_bbox=0.651283860206604),
        num_dets=100, box_sum=123597.07, score_sum=1.0434, top3_labels=[1, 21, 21],
        top3_boxes=[[510.371, 0.0, 611.395, 100.625], [465.147, 143.642, 528.927, 206.961],
                    [368.723, 112.291, 432.114, 175.832]]),
    'pvt/retinanet_pvtv2-b0_fpn_1x_coco.py': dict(
        losses=dict(loss_cls=1.1327944993972778, loss_bbox=0.650305986404419),
        num_dets=100, box_sum=120567.16, score_sum=1.03835, top3_labels=[35, 27, 47],
        top3_boxes=[[98.29, 57.317, 188.605, 102.583], [358.759, 202.958, 501.459, 275.769],
                    [358.635, 163.378, 471.059, 220.496]]),
}


@pytest.mark.parametrize('config', sorted(MMDET_RESULTS))
def test_losses_and_detections_equal_mmdetections(config, coco128):
    cfg = Config.fromfile(str(REPO_ROOT / 'configs' / config))
    cfg.merge_from_dict({'model.backbone.init_cfg': None, 'model.test_cfg.score_thr': 0.0})
    adopt_default_scope(cfg)
    cfg.model.pop('data_preprocessor')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    inputs, annotations = coco128_batch(coco128, num_classes=80, image_ids=(9, ), scale=SCALE)
    samples = detlab_samples(annotations)
    want = MMDET_RESULTS[config]

    model.train()
    torch.manual_seed(1)
    losses = model.loss(inputs, copy.deepcopy(samples))
    for name, value in want['losses'].items():
        assert float(sum(losses[name])) == pytest.approx(value, rel=1e-5)

    model.eval()
    with torch.no_grad():
        pred = model.predict(inputs, copy.deepcopy(samples))[0].pred_instances
    assert len(pred) == want['num_dets']
    assert pred.bboxes.sum().item() == pytest.approx(want['box_sum'], rel=1e-5)
    assert pred.scores.sum().item() == pytest.approx(want['score_sum'], rel=1e-4)
    assert pred.labels[:3].tolist() == want['top3_labels']
    assert torch.allclose(pred.bboxes[:3], torch.tensor(want['top3_boxes']), atol=2e-3)
