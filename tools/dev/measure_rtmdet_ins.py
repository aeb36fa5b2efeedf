"""Measure the MMDetection 3.3 RTMDet-Ins numbers that test_rtmdet_ins.py pins (not run by CI).

The test is tests/test_models/test_detectors/test_rtmdet_ins.py.

RTMDet-Ins-tiny built from MMDetection's own config (the byte-for-byte copy under
tests/data/mmdet_3.3_configs/rtmdet/), with the seeded weights and the coco128 batch of
tests/test_models/test_detectors/rtmdet_parity.py (two photos fitted into 320 x 320), each
object's mask the ellipse inscribed in its box (polygons on the first image, bitmaps on the
second): the detections in eval mode, rescaled to the original photo (per image: count,
score sum, top boxes, scores, labels and mask pixel counts, the masks' pixel sum and a digest
of all of them), then the losses in train mode. Prints a Python literal to paste into the test.

    python tools/dev/measure_rtmdet_ins.py [--size 320] [--compare] [--state-dicts]

``--compare`` also runs detlab's model on the same weights and batch and prints the
differences (losses relative, boxes in pixels, masks: differing pixels and the least IoU).
``--state-dicts`` summarises the state_dict of every rtmdet-ins config.
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

from measure_rtmdet import COCO128, build_detlab, build_mmdet, state_dict_summaries  # noqa: E402,E501
from mmdet_reference import import_mmdet  # noqa: E402
from rtmdet_parity import coco128_batch, parity_samples, parity_state_dict  # noqa: E402

TOP = 5
ALL_CONFIGS = ('rtmdet-ins_tiny_8xb32-300e_coco.py', 'rtmdet-ins_s_8xb32-300e_coco.py',
               'rtmdet-ins_m_8xb32-300e_coco.py', 'rtmdet-ins_l_8xb32-300e_coco.py',
               'rtmdet-ins_x_8xb16-300e_coco.py')


def mask_digest(masks: torch.Tensor) -> str:
    """First 16 hex digits of the SHA-256 of the (N, H, W) bool masks' bytes."""
    return hashlib.sha256(masks.to(torch.uint8).contiguous().numpy().tobytes()).hexdigest()[:16]


def run(model, inputs, samples):
    """Detections (eval) first, then losses (train; BN statistics change after it)."""
    model.eval()
    with torch.no_grad():
        results = model.predict(inputs, copy.deepcopy(samples), rescale=True)
    model.train()
    losses = model.loss(inputs, copy.deepcopy(samples))
    levels = {key: ([float(x) for x in value] if isinstance(value, (list, tuple))
                    else float(value)) for key, value in losses.items()}
    dets = []
    for result in results:
        pred = result.pred_instances
        dets.append(dict(num=len(pred), boxes=pred.bboxes[:TOP].tolist(),
                         scores=pred.scores[:TOP].tolist(), labels=pred.labels[:TOP].tolist(),
                         score_sum=float(pred.scores.sum()),
                         mask_shape=list(pred.masks.shape),
                         mask_pixel_sum=int(pred.masks.sum()),
                         top_mask_pixels=pred.masks[:TOP].flatten(1).sum(1).tolist(),
                         mask_digest=mask_digest(pred.masks)))
    return levels, dets, results


def compare(levels, d_levels, mm_results, d_results):
    for key, value in levels.items():
        ref = torch.tensor(value, dtype=torch.float64).reshape(-1)
        got = torch.tensor(d_levels[key], dtype=torch.float64).reshape(-1)
        print(key, 'mmdet', value, 'detlab', d_levels[key],
              'max rel diff', float(((got - ref).abs() / ref.abs().clamp(min=1e-12)).max()))
    for m, d in zip(mm_results, d_results):
        mp, dp = m.pred_instances, d.pred_instances
        print('num', len(mp), len(dp))
        if len(mp) != len(dp) or len(mp) == 0:
            continue
        inter = (mp.masks & dp.masks).flatten(1).sum(1).double()
        union = (mp.masks | dp.masks).flatten(1).sum(1).double()
        iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
        print('  max box diff', float((mp.bboxes - dp.bboxes).abs().max()),
              'max score diff', float((mp.scores - dp.scores).abs().max()),
              'labels equal', bool((mp.labels == dp.labels).all()),
              'mask shapes', tuple(mp.masks.shape), tuple(dp.masks.shape),
              'pixels differing', int((mp.masks != dp.masks).sum()),
              'least mask IoU', float(iou.min()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=320)
    parser.add_argument('--compare', action='store_true')
    parser.add_argument('--state-dicts', action='store_true')
    args = parser.parse_args()
    import_mmdet()
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks, PolygonMasks
    inputs, metas, gts = coco128_batch(COCO128, args.size)
    torch.manual_seed(0)
    detlab_model = build_detlab('ins-tiny')
    weights = parity_state_dict(detlab_model, inputs)
    mmdet_model = build_mmdet('ins-tiny')
    mmdet_model.load_state_dict(weights, strict=True)
    levels, dets, mm_results = run(
        mmdet_model, inputs,
        parity_samples(DetDataSample, metas, gts, (BitmapMasks, PolygonMasks)))
    reference = {'ins-tiny': dict(level_losses=levels, detections=dets)}
    if args.compare:
        from detlab.structures import DetDataSample as DetlabSample
        from detlab.structures.mask import BitmapMasks as DetlabBitmaps
        from detlab.structures.mask import PolygonMasks as DetlabPolygons
        detlab_model.load_state_dict(weights, strict=True)
        d_levels, _, d_results = run(
            detlab_model, inputs,
            parity_samples(DetlabSample, metas, gts, (DetlabBitmaps, DetlabPolygons)))
        compare(levels, d_levels, mm_results, d_results)
    if args.state_dicts:
        reference['state_dicts'] = state_dict_summaries(ALL_CONFIGS)
    print(repr(reference))


if __name__ == '__main__':
    main()
