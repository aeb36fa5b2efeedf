"""Measure MMDetection 3.3's DetTTAModel numbers that test_det_tta.py pins.

The test is tests/test_models/test_test_time_augs/test_det_tta.py. MMDetection's DetTTAModel
around MMDetection's RetinaNet and RTMDet (the quickstarts' models, seeded weights) merges
the four views (two scales, flipped and not) of one coco128 photo that detlab's TestTimeAug
pipeline makes (tests/test_models/test_test_time_augs/det_tta_case.py). Prints the merged
detections' count, score sum and top 5, and with ``--compare`` detlab's beside them.

    python tools/dev/measure_det_tta.py [--case retinanet|rtmdet] [--compare]
"""
import argparse
import copy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_test_time_augs'))
sys.path.insert(0, str(REPO / 'tests'))
sys.path.insert(0, str(REPO))

from det_tta_case import CASES, model_cfg, seeded_weights, tta_batch  # noqa: E402
from mmdet_reference import import_mmdet  # noqa: E402

COCO128 = REPO.parent / 'shared/data/coco128'


def build_tta(scope, case):
    from mmengine.config import ConfigDict
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        # As a config file gives it: ConfigDicts (MMDetection reads tta_cfg.nms).
        return MODELS.build(ConfigDict(CASES[case]['tta_model'], module=model_cfg(REPO, case)))


def summary(merged):
    out = []
    for sample in merged:
        pred = sample.pred_instances
        out.append(dict(num=len(pred), score_sum=float(pred.scores.sum()),
                        labels=pred.labels[:5].tolist(), scores=pred.scores[:5].tolist(),
                        boxes=pred.bboxes[:5].tolist()))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--case', choices=sorted(CASES), default='retinanet')
    parser.add_argument('--compare', action='store_true')
    args = parser.parse_args()
    import_mmdet()
    from detlab.registry import TRANSFORMS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('detlab'):
        detlab_tta = build_tta('detlab', args.case)
        weights = seeded_weights(detlab_tta.module, args.case)
        data = tta_batch(COCO128, TRANSFORMS, args.case)
    mmdet_tta = build_tta('mmdet', args.case)
    mmdet_tta.module.load_state_dict(weights, strict=True)
    mmdet_tta.eval()
    reference = summary(mmdet_tta.test_step(copy.deepcopy(data)))
    if args.compare:
        detlab_tta.eval()
        print('detlab', summary(detlab_tta.test_step(copy.deepcopy(data))))
    print(repr(reference))


if __name__ == '__main__':
    main()
