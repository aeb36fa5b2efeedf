"""Measure MMDetection 3.3's Cascade (Mask) R-CNN numbers that detlab's tests pin (not
run by CI).

Same weights and inputs on both sides, as tools/dev/measure_mask_rcnn.py (whose helpers
this reuses): detlab builds the model (torch.manual_seed(0), init_weights()), MMDetection's
model loads detlab's state_dict strictly; the inputs are coco128 photos whose objects get
the ellipse inscribed in their boxes as masks (polygons on the first image, bitmaps on
the second); torch.manual_seed(1) before each loss() (both draw every stage's
RandomSampler permutations from the global generator, in the same order).

Models:
  tiny  tests/test_models/test_detectors/tiny_cascade_rcnn.py, without and with masks, on
        coco128 images 9 and 49 at 224x160: the numbers test_cascade_rcnn.py pins.
  r50   configs/cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py and
        cascade-mask-rcnn_r50_fpn_1x_coco.py against MMDetection's files of those names, on
        coco128 image 9 at 1066x800 (score_thr 0.001): state_dict keys, losses, boxes and
        pasted masks.

Usage:  python tools/dev/measure_cascade_rcnn.py [--skip-r50]
"""
import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))

from measure_mask_rcnn import (COCO128, compare, full_model, mmdet_samples,  # noqa: E402
                               quiet, run)


def tiny(mmdet_models):
    from mmengine.config import ConfigDict

    from detlab.registry import MODELS
    from tiny_cascade_rcnn import tiny_config
    from tiny_mask_rcnn import coco128_batch, detlab_samples
    inputs, annotations = coco128_batch(COCO128)
    reports = []
    for with_mask in (False, True):
        cfg = tiny_config(with_mask=with_mask)
        torch.manual_seed(0)
        detlab_model = MODELS.build(cfg)
        detlab_model.init_weights()
        mmdet_model = mmdet_models.build(ConfigDict(cfg))
        mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
        mmdet_out = run(mmdet_model, inputs, mmdet_samples(annotations))
        report = compare(f'tiny cascade with_mask={with_mask}',
                         run(detlab_model, inputs, detlab_samples(annotations)), mmdet_out)
        m_preds = mmdet_out[1]
        pred = m_preds[0]
        report['pin'] = dict(
            num_dets=[len(p) for p in m_preds], top3_boxes=pred.bboxes[:3].tolist(),
            top3_scores=pred.scores[:3].tolist(), top3_labels=pred.labels[:3].tolist(),
            box_sums=[float(p.bboxes.sum()) for p in m_preds])
        if with_mask:
            report['pin'].update(
                mask_pixels_per_image=[int(p.masks.sum()) for p in m_preds],
                top3_mask_pixels=pred.masks[:3].flatten(1).sum(1).tolist())
        reports.append(report)
    return reports


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-r50', action='store_true')
    args = parser.parse_args()
    from mmdet_reference import import_mmdet
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import detlab.models  # noqa: F401
    quiet()
    reports = tiny(MMDET_MODELS)
    if not args.skip_r50:
        for name in ('cascade-rcnn_r50_fpn_1x_coco.py', 'cascade-mask-rcnn_r50_fpn_1x_coco.py'):
            reports += full_model(MMDET_MODELS, name, (1333, 800), folder='cascade_rcnn')
    for report in reports:
        print(json.dumps(report))


if __name__ == '__main__':
    main()
