"""Measure the MMDetection 3.3 RTMDet numbers that test_rtmdet.py pins.

The test is tests/test_models/test_detectors/test_rtmdet.py.

For RTMDet-tiny, RTMDet-s and RTMDet-tiny with RTMDetHead, built from MMDetection's own
configs (the byte-for-byte copies under tests/data/mmdet_3.3_configs/rtmdet/), with the seeded
weights and the coco128 batch of tests/test_models/test_detectors/rtmdet_parity.py: the
detections in eval mode (per image: count, top boxes, scores, labels) and then the losses in
train mode. Also ExpMomentumEMA's averaged weights after 50 updates (``ema_updates``) and, with
``--state-dicts``, a summary of the state_dict of every RTMDet config. Prints a Python literal
to paste into the tests.

    python tools/dev/measure_rtmdet.py [--size 320] [--compare] [--models tiny s ...] [--state-dicts]

``--compare`` also runs detlab's model on the same weights and batch and prints the differences.
"""
import argparse
import copy
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))
sys.path.insert(0, str(REPO))

from mmdet_reference import import_mmdet  # noqa: E402
from rtmdet_parity import (CONFIGS, coco128_batch, ema_updates, parity_model_cfg,  # noqa: E402
                           parity_samples, parity_state_dict)

COCO128 = REPO.parent / 'shared/data/coco128'
TOP = 5


def build_mmdet(name):
    from mmdet.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(parity_model_cfg(REPO, name))


def build_detlab(name):
    from detlab.registry import MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('detlab'):
        return MODELS.build(parity_model_cfg(REPO, name))


def run(model, inputs, batch_samples):
    """Detections (eval) first, then losses (train; BN statistics change after it)."""
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, copy.deepcopy(batch_samples), rescale=True)
    model.train()
    losses = model.loss(inputs, copy.deepcopy(batch_samples))
    summed = {key: float(sum(v) if isinstance(v, (list, tuple)) else v)
              for key, value in losses.items() for v in [value]}
    levels = {key: [float(x) for x in value] for key, value in losses.items()}
    dets = []
    for result in results:
        pred = result.pred_instances
        dets.append(dict(num=len(pred), boxes=pred.bboxes[:TOP].tolist(),
                         scores=pred.scores[:TOP].tolist(), labels=pred.labels[:TOP].tolist(),
                         score_sum=float(pred.scores.sum())))
    return summed, levels, dets, results


ALL_CONFIGS = ('rtmdet_tiny_8xb32-300e_coco.py', 'rtmdet_s_8xb32-300e_coco.py',
               'rtmdet_m_8xb32-300e_coco.py', 'rtmdet_l_8xb32-300e_coco.py',
               'rtmdet_x_8xb32-300e_coco.py', 'rtmdet_x_p6_4xb8-300e_coco.py')


def state_dict_summaries(configs=ALL_CONFIGS):
    """Per MMDetection config (under tests/data/mmdet_3.3_configs/rtmdet/): state_dict
    entries, total elements, and a digest of every key's name and shape."""
    import hashlib

    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    out = {}
    for file_name in configs:
        cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs/rtmdet' / file_name))
        cfg.model.backbone.init_cfg = None
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
    parser.add_argument('--models', nargs='*', default=list(CONFIGS), choices=list(CONFIGS),
                        help='which RTMDet configs to measure (none: only the EMA)')
    parser.add_argument('--state-dicts', action='store_true',
                        help='also summarise the state_dict of every RTMDet config')
    args = parser.parse_args()
    import_mmdet()
    from mmdet.structures import DetDataSample
    inputs, metas, gts = coco128_batch(COCO128, args.size)
    reference = {}
    for name in args.models:
        torch.manual_seed(0)
        detlab_model = build_detlab(name)
        weights = parity_state_dict(detlab_model, inputs)
        mmdet_model = build_mmdet(name)
        mmdet_model.load_state_dict(weights, strict=True)
        summed, levels, dets, mm_results = run(
            mmdet_model, inputs, parity_samples(DetDataSample, metas, gts))
        reference[name] = dict(losses=summed, level_losses=levels, detections=dets)
        if args.compare:
            from detlab.structures import DetDataSample as DetlabSample
            detlab_model.load_state_dict(weights, strict=True)
            d_summed, d_levels, d_dets, d_results = run(
                detlab_model, inputs, parity_samples(DetlabSample, metas, gts))
            print(name, 'losses mmdet', summed, 'detlab', d_summed)
            print(name, 'level losses mmdet', levels, 'detlab', d_levels)
            for m, d in zip(mm_results, d_results):
                mp, dp = m.pred_instances, d.pred_instances
                print(name, 'num', len(mp), len(dp))
                if len(mp) == len(dp):
                    print('  max box diff', float((mp.bboxes - dp.bboxes).abs().max()),
                          'max score diff', float((mp.scores - dp.scores).abs().max()),
                          'labels equal', bool((mp.labels == dp.labels).all()))
    from mmdet.models.layers import ExpMomentumEMA
    reference['ema'] = ema_updates(ExpMomentumEMA)
    if args.compare:
        from detlab.models.layers import ExpMomentumEMA as DetlabEMA
        print('ema equal', ema_updates(DetlabEMA) == reference['ema'])
    if args.state_dicts:
        reference['state_dicts'] = state_dict_summaries()
    print(repr(reference))


if __name__ == '__main__':
    main()
