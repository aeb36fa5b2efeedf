"""Measure the MMDetection 3.3 YOLOX numbers that test_yolox.py pins.

The test is tests/test_models/test_detectors/test_yolox.py.

For YOLOX-tiny (with the L1 loss of the last epochs on) and YOLOX-s, built from MMDetection's
own configs (the byte-for-byte copies under tests/data/mmdet_3.3_configs/yolox/), with the
seeded weights of tests/test_models/test_detectors/yolox_parity.py and rtmdet_parity.py's
coco128 batch: the detections in eval mode (per image: count, score sum, top boxes, scores,
labels) and then the losses in train mode. With ``--state-dicts``, a summary of the state_dict
of every YOLOX config. Prints a Python literal to paste into the tests.

    python tools/dev/measure_yolox.py [--size 320] [--compare] [--models tiny s] [--state-dicts]

``--compare`` also runs detlab's model on the same weights and batch and prints the differences.
"""
import argparse
import copy
import hashlib
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))
sys.path.insert(0, str(REPO))

from mmdet_reference import import_mmdet  # noqa: E402
from rtmdet_parity import coco128_batch, parity_samples  # noqa: E402
from yolox_parity import CONFIGS, parity_model_cfg, parity_state_dict  # noqa: E402

COCO128 = REPO.parent / 'shared/data/coco128'
TOP = 5
ALL_CONFIGS = ('yolox_nano_8xb8-300e_coco.py', 'yolox_tiny_8xb8-300e_coco.py',
               'yolox_s_8xb8-300e_coco.py', 'yolox_m_8xb8-300e_coco.py',
               'yolox_l_8xb8-300e_coco.py', 'yolox_x_8xb8-300e_coco.py')


def build(scope, name):
    from mmengine.registry import DefaultScope
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from detlab.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(parity_model_cfg(REPO, name))
    model.bbox_head.use_l1 = CONFIGS[name][1]
    return model


def run(model, inputs, batch_samples):
    """Detections (eval) first, then losses (train; BN statistics change after it)."""
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, copy.deepcopy(batch_samples), rescale=True)
    model.train()
    losses = {key: float(value) for key, value in
              model.loss(inputs, copy.deepcopy(batch_samples)).items()}
    dets = []
    for result in results:
        pred = result.pred_instances
        dets.append(dict(num=len(pred), boxes=pred.bboxes[:TOP].tolist(),
                         scores=pred.scores[:TOP].tolist(), labels=pred.labels[:TOP].tolist(),
                         score_sum=float(pred.scores.sum())))
    return losses, dets, results


def state_dict_summaries():
    """Per MMDetection YOLOX config: state_dict entries, total elements, and a digest of
    every key's name and shape."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    out = {}
    for file_name in ALL_CONFIGS:
        cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs/yolox' / file_name))
        with DefaultScope.overwrite_default_scope('mmdet'):
            state_dict = MODELS.build(cfg.model).state_dict()
        keys = ''.join(f'{k}:{tuple(v.shape)};' for k, v in state_dict.items())
        out[file_name] = (len(state_dict), sum(v.numel() for v in state_dict.values()),
                          hashlib.sha256(keys.encode()).hexdigest()[:16])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=320)
    parser.add_argument('--compare', action='store_true')
    parser.add_argument('--models', nargs='*', default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument('--state-dicts', action='store_true',
                        help='also summarise the state_dict of every YOLOX config')
    args = parser.parse_args()
    import_mmdet()
    from mmdet.structures import DetDataSample
    inputs, metas, gts = coco128_batch(COCO128, args.size)
    reference = {}
    for name in args.models:
        torch.manual_seed(0)
        detlab_model = build('detlab', name)
        weights = parity_state_dict(detlab_model, inputs)
        mmdet_model = build('mmdet', name)
        mmdet_model.load_state_dict(weights, strict=True)
        losses, dets, mm_results = run(mmdet_model, inputs,
                                       parity_samples(DetDataSample, metas, gts))
        reference[name] = dict(losses=losses, detections=dets)
        if args.compare:
            from detlab.structures import DetDataSample as DetlabSample
            detlab_model.load_state_dict(weights, strict=True)
            d_losses, _, d_results = run(detlab_model, inputs,
                                         parity_samples(DetlabSample, metas, gts))
            print(name, 'losses mmdet', losses, 'detlab', d_losses)
            for m, d in zip(mm_results, d_results):
                mp, dp = m.pred_instances, d.pred_instances
                print(name, 'num', len(mp), len(dp))
                if len(mp) == len(dp):
                    print('  max box diff', float((mp.bboxes - dp.bboxes).abs().max()),
                          'max score diff', float((mp.scores - dp.scores).abs().max()),
                          'labels equal', bool((mp.labels == dp.labels).all()))
    if args.state_dicts:
        reference['state_dicts'] = state_dict_summaries()
    print(repr(reference))


if __name__ == '__main__':
    main()
