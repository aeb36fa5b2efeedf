"""Measure the MMDetection 3.3 SSD and YOLOv3 numbers that test_ssd_yolo.py pins.

The test is tests/test_models/test_detectors/test_ssd_yolo.py.

For SSD300 and YOLOv3-D53, built from MMDetection's own configs (the byte-for-byte copies
under tests/data/mmdet_3.3_configs/), with the seeded weights and the coco128 batch of
tests/test_models/test_detectors/ssd_yolo_parity.py: the detections in eval mode (per
image: count, top boxes, scores, labels, score sum) and then the losses in train mode
(per image for SSD, per level for YOLOv3, as MMDetection returns them). With
``--state-dicts``, the state_dict signature of every config of MMDetection's ssd/ and
yolo/ folders. Prints Python literals to paste into the test.

    PYTHONPATH=$PWD python tools/dev/measure_ssd_yolo.py [--compare] [--state-dicts]

``--compare`` also runs detlab's model on the same weights and batch and prints the
largest differences.
"""
import argparse
import pprint
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))
sys.path.insert(0, str(REPO))

from helpers import state_dict_signature  # noqa: E402
from mmdet_reference import import_mmdet  # noqa: E402
from measure_rtmdet import run  # noqa: E402
from rtmdet_parity import coco128_batch, parity_samples  # noqa: E402
from ssd_yolo_parity import ALL_CONFIGS, CASES, parity_model_cfg, parity_state_dict  # noqa: E402

COCO128 = REPO.parent / 'shared/data/coco128'


def build(scope, cfg):
    from mmengine.registry import DefaultScope
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from detlab.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(cfg)


def measure(name, compare):
    from mmdet.structures import DetDataSample as MMDetSample

    from detlab.structures import DetDataSample
    inputs, metas, gts = coco128_batch(COCO128, CASES[name][1])
    torch.manual_seed(0)
    reference = build('mmdet', parity_model_cfg(REPO, name))
    if name.startswith('ssd'):
        # MMDetection 3.3's SSDHead cannot predict: BaseDenseHead reads self.loss_cls
        # (for v3det's custom losses), which SSDHead never sets. None reads as "no custom
        # loss" and leaves its softmax path, which is what runs.
        reference.bbox_head.loss_cls = None
    weights = parity_state_dict(reference, inputs)
    _, losses, dets, ref_results = run(reference, inputs, parity_samples(MMDetSample, metas, gts))
    print(f'{name!r}: ', end='')
    pprint.pprint(dict(losses=losses, detections=dets), width=96, compact=True)
    if not compare:
        return
    model = build('detlab', parity_model_cfg(REPO, name))
    model.load_state_dict(weights, strict=True)
    _, got_losses, _, results = run(model, inputs, parity_samples(DetDataSample, metas, gts))
    for key, values in losses.items():
        rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(got_losses[key], values))
        print(f'  {key}: largest relative difference {rel:.2e}')
    for got, want in zip(results, ref_results):
        got, want = got.pred_instances, want.pred_instances
        same = (len(got) == len(want) and torch.equal(got.labels, want.labels))
        box = (got.bboxes - want.bboxes).abs().max().item() if same else float('nan')
        score = (got.scores - want.scores).abs().max().item() if same else float('nan')
        print(f'  detections: {len(got)} vs {len(want)}, labels equal {same}, '
              f'box diff {box:.2e} px, score diff {score:.2e}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--compare', action='store_true')
    parser.add_argument('--state-dicts', action='store_true')
    parser.add_argument('--models', nargs='*', default=sorted(CASES))
    args = parser.parse_args()
    import_mmdet()
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if args.state_dicts:
        from mmengine.config import Config
        for path in ALL_CONFIGS:
            cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs' / path))
            cfg.model.backbone.init_cfg = None
            print(f'{path!r}: {state_dict_signature(build("mmdet", cfg.model))},')
    for name in args.models:
        measure(name, args.compare)


if __name__ == '__main__':
    main()
