"""Measure MMDetection 3.3's FoveaHead, which tests/test_models/test_dense_heads/
test_fovea_head.py pins.

For each case of fovea_cases.py (plain, and gn-head-align's FeatureAlign branch),
MMDetection's head gets tests/helpers.py's ``fill_seeded_weights``, detlab's loads its
state_dict strictly, and both run on the same seeded features: the losses in train
mode and the detections (``rescale=True``) in eval mode. Prints MMDetection's figures
as Python literals and the largest difference to detlab's.

Not run by CI (it needs the MMDetection wheel):

    PYTHONPATH=$PWD python tools/dev/measure_fovea.py
"""
import pprint
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_dense_heads'))

from fovea_cases import CASES, FOVEA_GTS, FOVEA_METAS, fovea_feats  # noqa: E402
from helpers import fill_seeded_weights  # noqa: E402
from mmdet_reference import import_mmdet  # noqa: E402


def run(head) -> tuple:
    """Losses (train mode) and detections (eval mode) of one head."""
    head.train()
    losses = head.loss_by_feat(*head(fovea_feats()), batch_gt_instances=FOVEA_GTS,
                               batch_img_metas=FOVEA_METAS)
    head.eval()
    with torch.no_grad():
        results = head.predict_by_feat(*head(fovea_feats()), batch_img_metas=FOVEA_METAS,
                                       rescale=True)
    return {k: v.item() for k, v in losses.items()}, results


def main() -> None:
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict
    from mmengine.registry import DefaultScope

    from detlab.registry import MODELS
    register_all_modules(init_default_scope=False)
    for case, cfg in CASES.items():
        # MMDetection's FoveaHead reads cfg.score_thr: its test_cfg must be a ConfigDict.
        theirs = MMDET_MODELS.build(dict(cfg, test_cfg=ConfigDict(cfg['test_cfg'])))
        fill_seeded_weights(theirs)
        with DefaultScope.overwrite_default_scope('detlab'):
            ours = MODELS.build(cfg)
        assert list(ours.state_dict()) == list(theirs.state_dict()), case
        ours.load_state_dict(theirs.state_dict(), strict=True)
        losses, results = run(theirs)
        our_losses, our_results = run(ours)
        figures = dict(losses=losses, counts=[len(r) for r in results],
                       score_sums=[float(r.scores.sum()) for r in results],
                       first_boxes=[r.bboxes[0].tolist() for r in results],
                       labels=[r.labels.tolist() for r in results])
        print(case)
        pprint.pprint(figures, width=100)
        print('  loss differences:', {k: abs(losses[k] - our_losses[k]) for k in losses})
        identical = all(torch.equal(getattr(a, key), getattr(b, key))
                        for a, b in zip(results, our_results)
                        for key in ('bboxes', 'scores', 'labels'))
        print('  detections bit-identical:', identical)


if __name__ == '__main__':
    main()
