"""Measure MMDetection 3.3's Hybrid Task Cascade numbers that detlab's tests pin (not run
by CI).

Same weights and inputs on both sides, as tools/dev/measure_cascade_rcnn.py: detlab builds
the model (torch.manual_seed(0), init_weights()), MMDetection's model loads detlab's
state_dict strictly; the inputs are coco128 photos whose objects get the ellipse inscribed
in their boxes as masks (polygons on the first image, bitmaps on the second) and a
synthetic semantic map (tests/test_models/test_detectors/tiny_htc.py: stuff bands, the
objects' ellipses, 255 on the padding); torch.manual_seed(1) before each loss() (both draw
every stage's RandomSampler permutations, the interleaved re-sampling's included, from the
global generator in the same order).

Models:
  tiny  tests/test_models/test_detectors/tiny_htc.py, without and with the semantic
        branch, on coco128 images 9 and 49 at 224x160: the numbers test_htc.py pins.
  r50   configs/htc/htc-without-semantic_r50_fpn_1x_coco.py and htc_r50_fpn_1x_coco.py
        against MMDetection's files of those names, on coco128 image 9 at 1066x800
        (score_thr 0.001, MMDetection's default for HTC): state_dict keys, losses, boxes
        and pasted masks.

  --configs  only the state_dict signatures of MMDetection's models of its HTC configs
        (configs/htc and the HTC configs of hrnet and res2net), which test_htc_configs.py
        pins.

Usage:  python tools/dev/measure_htc.py [--skip-r50 | --configs]
"""
import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))

from helpers import state_dict_signature  # noqa: E402
from measure_mask_rcnn import (COCO128, MMDET_CONFIGS, compare, mmdet_samples,  # noqa: E402
                               quiet, run, seeded_pair)

#: MMDetection 3.3's HTC configs (fixtures under tests/data/mmdet_3.3_configs), whose
#: state_dict signatures ``--configs`` prints for test_htc_configs.py.
HTC_CONFIGS = sorted(
    path.relative_to(REPO / 'tests/data/mmdet_3.3_configs').as_posix()
    for folder in ('htc', 'hrnet', 'res2net')
    for path in (REPO / 'tests/data/mmdet_3.3_configs' / folder).glob('htc*.py'))


def samples(annotations, with_semantic):
    """(detlab's, MMDetection's) samples of the annotations, with semantic maps if asked."""
    from tiny_htc import with_semantic_maps
    from tiny_mask_rcnn import detlab_samples
    pair = (detlab_samples(annotations), mmdet_samples(annotations))
    if with_semantic:
        pair = tuple(with_semantic_maps(s, annotations) for s in pair)
    return pair


def pins(preds):
    pred = preds[0]
    return dict(num_dets=[len(p) for p in preds], top3_boxes=pred.bboxes[:3].tolist(),
                top3_scores=pred.scores[:3].tolist(), top3_labels=pred.labels[:3].tolist(),
                box_sums=[float(p.bboxes.sum()) for p in preds],
                mask_pixels_per_image=[int(p.masks.sum()) for p in preds],
                top3_mask_pixels=pred.masks[:3].flatten(1).sum(1).tolist())


def tiny(mmdet_models):
    from tiny_htc import tiny_config
    from tiny_mask_rcnn import coco128_batch
    inputs, annotations = coco128_batch(COCO128)
    reports = []
    for with_semantic in (False, True):
        detlab_model, mmdet_model = seeded_pair(mmdet_models,
                                                tiny_config(with_semantic=with_semantic))
        detlab_in, mmdet_in = samples(annotations, with_semantic)
        mmdet_out = run(mmdet_model, inputs, mmdet_in)
        report = compare(f'tiny htc with_semantic={with_semantic}',
                         run(detlab_model, inputs, detlab_in), mmdet_out)
        report['pin'] = pins(mmdet_out[1])
        reports.append(report)
    return reports


def r50(mmdet_models, config_name):
    """detlab's configs/htc/<config_name> against MMDetection's file of that name."""
    from mmengine.config import Config

    from detlab.registry import MODELS
    from detlab.utils import adopt_default_scope
    from tiny_mask_rcnn import coco128_batch

    def config(path, scope):
        cfg = Config.fromfile(str(path))
        cfg.merge_from_dict({'model.backbone.init_cfg': None})
        if scope == 'detlab':
            adopt_default_scope(cfg)
        cfg.model.pop('data_preprocessor')
        return cfg.model

    torch.manual_seed(0)
    detlab_model = MODELS.build(config(REPO / 'configs/htc' / config_name, 'detlab'))
    detlab_model.init_weights()
    mmdet_model = mmdet_models.build(config(MMDET_CONFIGS / 'htc' / config_name, 'mmdet'))
    mmdet_state = mmdet_model.state_dict()
    keys_equal = sorted(mmdet_state) == sorted(detlab_model.state_dict())
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    inputs, annotations = coco128_batch(COCO128, num_classes=80, image_ids=(9, ),
                                        scale=(1333, 800))
    detlab_in, mmdet_in = samples(annotations, 'without-semantic' not in config_name)
    report = compare(config_name, run(detlab_model, inputs, detlab_in),
                     run(mmdet_model, inputs, mmdet_in))
    report.update(same_state_dict_keys=keys_equal, num_keys=len(mmdet_state),
                  state_dict_signature=state_dict_signature(mmdet_model),
                  input_shape=tuple(inputs.shape))
    return [report]


def config_signatures(mmdet_models):
    """(entries, SHA-1 of the sorted (key, shape) list) of MMDetection's model of every
    HTC config, built on the 'meta' device (shapes without memory)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # MMDetection's configs name its types without a scope
    for path in HTC_CONFIGS:
        cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs' / path))
        cfg.model.backbone.init_cfg = None
        with torch.device('meta'):
            model = mmdet_models.build(cfg.model)
        print(f'    {path!r}: {state_dict_signature(model)},')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--skip-r50', action='store_true')
    parser.add_argument('--configs', action='store_true',
                        help='only print the state_dict signatures of the HTC configs')
    args = parser.parse_args()
    from mmdet_reference import import_mmdet
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    import detlab.models  # noqa: F401
    quiet()
    if args.configs:
        return config_signatures(MMDET_MODELS)
    reports = tiny(MMDET_MODELS)
    if not args.skip_r50:
        for name in ('htc-without-semantic_r50_fpn_1x_coco.py', 'htc_r50_fpn_1x_coco.py'):
            reports += r50(MMDET_MODELS, name)
    for report in reports:
        print(json.dumps(report))


if __name__ == '__main__':
    main()
