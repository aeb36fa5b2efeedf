"""Measure MMDetection 3.3's Mask R-CNN numbers that detlab's tests pin (not run by CI).

Same weights and inputs on both sides: detlab builds the model (torch.manual_seed(0),
init_weights()), MMDetection's model loads detlab's state_dict strictly; the inputs are
coco128 photos whose objects get the ellipse inscribed in their boxes as masks
(polygons on the first image, bitmaps on the second). torch.manual_seed(1) before each
loss() (both draw the RandomSampler's permutations from the global generator).

Two models:
  tiny  the unit-test Mask R-CNN of tests/test_models/test_detectors/tiny_mask_rcnn.py
        (separate and shared RoI extractor): the numbers test_mask_rcnn.py pins.
  r50   configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py against MMDetection's own file,
        on coco128 image 9 at 1066x800 (score_thr 0.001 so that random weights detect
        100 objects): state_dict keys, losses, boxes and pasted masks.
  c4    (--c4) the same for mask-rcnn_r50-caffe-c4_1x_coco.py (ResLayer shared head),
        at 480x360 with 200 proposals per image to keep a CPU run short.

Usage:  python tools/dev/measure_mask_rcnn.py [--skip-r50] [--c4]
"""
import argparse
import copy
import hashlib
import json
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))
COCO128 = REPO.parent / 'shared/data/coco128'
MMDET_CONFIGS = Path('/tmp/mmdet_ref/mmdet/.mim/configs')


def quiet():
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmengine').setLevel(logging.ERROR)


def mmdet_samples(annotations):
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    from mmengine.structures import InstanceData
    from tiny_mask_rcnn import samples_from
    return samples_from(annotations, DetDataSample, InstanceData, BitmapMasks, PolygonMasks)


def state_dict_signature(state_dict) -> str:
    text = '\n'.join(f'{k}:{tuple(v.shape)}' for k, v in sorted(state_dict.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def seeded_pair(mmdet_models, cfg):
    """detlab's model of ``cfg`` (torch.manual_seed(0), init_weights()) and MMDetection's,
    which loads detlab's state_dict strictly."""
    from mmengine.config import ConfigDict

    from detlab.registry import MODELS
    torch.manual_seed(0)
    detlab_model = MODELS.build(cfg)
    detlab_model.init_weights()
    mmdet_model = mmdet_models.build(ConfigDict(cfg))
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    return detlab_model, mmdet_model


def run(model, inputs, samples, seed=1):
    model.train()
    torch.manual_seed(seed)
    losses = {k: float(sum(v) if isinstance(v, list) else v)  # per-level lists summed
              for k, v in model.loss(inputs, copy.deepcopy(samples)).items()}
    model.eval()
    with torch.no_grad():
        preds = [s.pred_instances for s in model.predict(inputs, copy.deepcopy(samples))]
    return losses, preds


def compare(name, detlab_out, mmdet_out):
    (d_losses, d_preds), (m_losses, m_preds) = detlab_out, mmdet_out
    report = dict(model=name, mmdet_losses=m_losses)
    report['loss_rel_diff'] = {k: abs(d_losses[k] - v) / max(abs(v), 1e-12)
                               for k, v in m_losses.items()}
    per_image = []
    for d, m in zip(d_preds, m_preds):
        same_n = len(d) == len(m)
        entry = dict(num_dets=(len(d), len(m)))
        if same_n and len(m):
            entry.update(
                labels_equal=bool(torch.equal(d.labels, m.labels)),
                max_box_diff=float((d.bboxes - m.bboxes).abs().max()),
                max_score_diff=float((d.scores - m.scores).abs().max()))
        if same_n and len(m) and 'masks' in m:
            masks_d, masks_m = d.masks, m.masks
            inter = (masks_d & masks_m).flatten(1).sum(1).double()
            union = (masks_d | masks_m).flatten(1).sum(1).double()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
            entry.update(
                mask_shape=tuple(masks_d.shape), mask_dtype=(str(masks_d.dtype),
                                                             str(masks_m.dtype)),
                pixels_differing=int((masks_d != masks_m).sum()),
                min_mask_iou=float(iou.min()),
                mask_pixels=int(masks_m.sum()))
        per_image.append(entry)
    report['images'] = per_image
    return report


def tiny(mmdet_models):
    from mmengine.config import ConfigDict

    from detlab.registry import MODELS
    from tiny_mask_rcnn import coco128_batch, detlab_samples, tiny_config
    inputs, annotations = coco128_batch(COCO128)
    reports = []
    for share in (False, True):
        cfg = tiny_config(share_roi_extractor=share)
        torch.manual_seed(0)
        detlab_model = MODELS.build(cfg)
        detlab_model.init_weights()
        mmdet_model = mmdet_models.build(ConfigDict(cfg))
        mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
        mmdet_out = run(mmdet_model, inputs, mmdet_samples(annotations))
        report = compare(f'tiny share_roi_extractor={share}',
                         run(detlab_model, inputs, detlab_samples(annotations)), mmdet_out)
        m_preds = mmdet_out[1]
        pred = m_preds[0]
        report['pin'] = dict(
            num_dets=[len(p) for p in m_preds], top3_boxes=pred.bboxes[:3].tolist(),
            top3_scores=pred.scores[:3].tolist(), top3_labels=pred.labels[:3].tolist(),
            mask_pixels_per_image=[int(p.masks.sum()) for p in m_preds],
            top3_mask_pixels=pred.masks[:3].flatten(1).sum(1).tolist())
        reports.append(report)
    return reports


def full_model(mmdet_models, config_name, scale, options=None, folder='mask_rcnn'):
    """detlab's configs/<folder>/<config_name> against MMDetection's file of that name."""
    from mmengine.config import Config

    from detlab.registry import MODELS
    from detlab.utils import adopt_default_scope
    from tiny_mask_rcnn import coco128_batch, detlab_samples

    def config(path, scope):
        cfg = Config.fromfile(str(path))
        cfg.merge_from_dict(dict(options or {}, **{'model.backbone.init_cfg': None,
                                                   'model.test_cfg.rcnn.score_thr': 0.001}))
        if scope == 'detlab':
            adopt_default_scope(cfg)
        cfg.model.pop('data_preprocessor')
        return cfg.model

    detlab_cfg = config(REPO / 'configs' / folder / config_name, 'detlab')
    mmdet_cfg = config(MMDET_CONFIGS / folder / config_name, 'mmdet')
    torch.manual_seed(0)
    detlab_model = MODELS.build(detlab_cfg)
    detlab_model.init_weights()
    mmdet_model = mmdet_models.build(mmdet_cfg)
    mmdet_state = mmdet_model.state_dict()
    keys_equal = sorted(mmdet_state) == sorted(detlab_model.state_dict())
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    inputs, annotations = coco128_batch(COCO128, num_classes=80, image_ids=(9, ), scale=scale)
    report = compare(config_name,
                     run(detlab_model, inputs, detlab_samples(annotations)),
                     run(mmdet_model, inputs, mmdet_samples(annotations)))
    report.update(same_state_dict_keys=keys_equal, num_keys=len(mmdet_state),
                  state_dict_signature=state_dict_signature(mmdet_state),
                  input_shape=tuple(inputs.shape))
    return [report]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-r50', action='store_true')
    parser.add_argument('--c4', action='store_true',
                        help='also mask-rcnn_r50-caffe-c4_1x_coco (at 480x360, 200 proposals)')
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
        reports += full_model(MMDET_MODELS, 'mask-rcnn_r50_fpn_1x_coco.py', (1333, 800))
    if args.c4:
        fewer = {f'model.{key}.max_per_img': 200
                 for key in ('train_cfg.rpn_proposal', 'test_cfg.rpn')}
        reports += full_model(MMDET_MODELS, 'mask-rcnn_r50-caffe-c4_1x_coco.py', (480, 360),
                              fewer)
    for report in reports:
        print(json.dumps(report))


if __name__ == '__main__':
    main()
