"""Measure MMDetection 3.3's losses and detections of Swin and PVT detectors (not run by CI).

For each config, detlab builds the model from its configs/ copy (torch.manual_seed(0),
init_weights() without the ImageNet weights), MMDetection builds its own file of that name
and loads detlab's state_dict strictly; both run loss() (torch.manual_seed(1) first) and
predict() on coco128 image 9 (its boxes, and ellipse masks for Mask R-CNN) resized to
``SCALE``, with score thresholds lowered so that random weights still detect 100 objects.
Prints, per config, the relative loss differences, the largest box and score differences
and MMDetection's numbers that tests/test_models/test_detectors/test_swin_pvt_detectors.py
pins.

Usage:  PYTHONPATH=$PWD python tools/dev/measure_swin_pvt_detectors.py [CONFIG ...]
"""
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))
from measure_mask_rcnn import COCO128, mmdet_samples, quiet, run  # noqa: E402

MMDET_CONFIGS = Path('/tmp/mmdet_ref/mmdet/.mim/configs')
SCALE = (320, 240)
#: Config -> overrides applied on both sides (low thresholds: random weights score low).
CONFIGS = {
    'swin/retinanet_swin-t-p4-w7_fpn_1x_coco.py': {'model.test_cfg.score_thr': 0.0},
    'pvt/retinanet_pvtv2-b0_fpn_1x_coco.py': {'model.test_cfg.score_thr': 0.0},
    'swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py': {'model.test_cfg.rcnn.score_thr': 0.001},
}


def model_cfg(path, options, scope):
    from mmengine.config import Config

    from detlab.utils import adopt_default_scope
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(dict(options, **{'model.backbone.init_cfg': None}))
    if scope == 'detlab':
        adopt_default_scope(cfg)
    cfg.model.pop('data_preprocessor')
    return cfg.model


def measure(mmdet_models, config):
    from detlab.registry import MODELS
    from tiny_mask_rcnn import coco128_batch, detlab_samples
    options = CONFIGS[config]
    torch.manual_seed(0)
    detlab_model = MODELS.build(model_cfg(REPO / 'configs' / config, options, 'detlab'))
    detlab_model.init_weights()
    mmdet_model = mmdet_models.build(model_cfg(MMDET_CONFIGS / config, options, 'mmdet'))
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    inputs, annotations = coco128_batch(COCO128, num_classes=80, image_ids=(9, ), scale=SCALE)
    (d_losses, d_preds) = run(detlab_model, inputs, detlab_samples(annotations))
    (m_losses, m_preds) = run(mmdet_model, inputs, mmdet_samples(annotations))
    d, m = d_preds[0], m_preds[0]
    report = dict(config=config, input_shape=tuple(inputs.shape), mmdet_losses=m_losses,
                  loss_rel_diff={k: abs(d_losses[k] - v) / max(abs(v), 1e-12)
                                 for k, v in m_losses.items()},
                  num_dets=(len(d), len(m)))
    if len(d) == len(m):
        report.update(labels_equal=bool(torch.equal(d.labels, m.labels)),
                      max_box_diff=float((d.bboxes - m.bboxes).abs().max()),
                      max_score_diff=float((d.scores - m.scores).abs().max()))
    report['pin'] = dict(num_dets=len(m), box_sum=round(float(m.bboxes.sum()), 2),
                         score_sum=round(float(m.scores.sum()), 5),
                         top3_labels=m.labels[:3].tolist(),
                         top3_boxes=[[round(v, 3) for v in b] for b in m.bboxes[:3].tolist()])
    return report


def main():
    from mmdet_reference import import_mmdet
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import detlab.models  # noqa: F401
    quiet()
    for config in sys.argv[1:] or CONFIGS:
        print(json.dumps(measure(MMDET_MODELS, config)))


if __name__ == '__main__':
    main()
