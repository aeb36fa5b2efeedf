"""Measure MMDetection 3.3's FoveaHead, which tests/test_models/test_dense_heads/
test_fovea_head.py pins.

For each case of fovea_cases.py (plain, and gn-head-align's FeatureAlign branch),
MMDetection's head gets tests/helpers.py's ``fill_seeded_weights``, detlab's loads its
state_dict strictly, and both run on the same seeded features: the losses in train
mode and the detections (``rescale=True``) in eval mode. Prints MMDetection's figures
as Python literals and the largest difference to detlab's.

``--detector`` instead runs whole FOVEA detectors of MMDetection's R-50 configs (plain
and gn-head-align; fixtures under tests/data/mmdet_3.3_configs/foveabox/, no pretrained
weights, 20 classes to keep it small) on one seeded 320x416 image with two boxes: seeded
weights in MMDetection's model (the head's conv weights a tenth), loaded strictly into detlab's,
losses in train mode and
detections in eval mode through the data preprocessors; prints both and the differences.

Not run by CI (it needs the MMDetection wheel):

    PYTHONPATH=$PWD python tools/dev/measure_fovea.py [--detector]
"""
import pprint
import sys
from pathlib import Path

import torch
from mmengine.structures import InstanceData

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


DETECTOR_CONFIGS = ['foveabox/fovea_r50_fpn_4xb4-1x_coco.py',
                    'foveabox/fovea_r50_fpn_gn-head-align_4xb4-2x_coco.py']


def detector_batch(sample_cls, training: bool) -> dict:
    sample = sample_cls(metainfo=dict(img_shape=(320, 416), pad_shape=(320, 416),
                                      ori_shape=(320, 416), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(
        bboxes=torch.tensor([[30., 40., 200., 220.], [250., 100., 300., 160.]]),
        labels=torch.tensor([3, 7]))
    image = torch.randint(0, 256, (3, 320, 416), generator=torch.Generator().manual_seed(3),
                          dtype=torch.uint8)
    return dict(inputs=[image], data_samples=[sample])


def measure_detectors() -> None:
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample as MMDetSample
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from detlab.registry import MODELS
    from detlab.structures import DetDataSample
    from detlab.utils import adopt_default_scope
    register_all_modules(init_default_scope=False)
    for path in DETECTOR_CONFIGS:
        cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs' / path))
        cfg.model.backbone.init_cfg = None
        cfg.model.bbox_head.num_classes = 20
        with DefaultScope.overwrite_default_scope('mmdet'):
            theirs = MMDET_MODELS.build(cfg.model)
        fill_seeded_weights(theirs)
        # He-scaled seeded weights through the un-normalised plain head saturate the
        # sigmoid (every score 1.0, ties in NMS order): a tenth of them keeps scores apart.
        with torch.no_grad():
            for param in theirs.bbox_head.parameters():
                param.mul_(0.1 if param.dim() > 1 else 1.0)
        adopt_default_scope(cfg)
        with DefaultScope.overwrite_default_scope('detlab'):
            ours = MODELS.build(cfg.model)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        report = {}
        for name, model, sample_cls in (('mmdet', theirs, MMDetSample),
                                        ('detlab', ours, DetDataSample)):
            model.train()
            losses = model(**model.data_preprocessor(detector_batch(sample_cls, True), True),
                           mode='loss')
            model.eval()
            with torch.no_grad():
                (result,) = model(**model.data_preprocessor(detector_batch(sample_cls, False),
                                                            False), mode='predict')
            report[name] = ({k: v.item() for k, v in losses.items()}, result.pred_instances)
        (loss_a, det_a), (loss_b, det_b) = report['mmdet'], report['detlab']
        print(path, 'mmdet losses', loss_a, 'detections', len(det_a),
              'score sum', float(det_a.scores.sum()))
        print('  loss differences:', {k: abs(loss_a[k] - loss_b[k]) for k in loss_a})
        print('  detections bit-identical:',
              all(torch.equal(det_a[k], det_b[k]) for k in ('bboxes', 'scores', 'labels')))


def main() -> None:
    import_mmdet()
    if sys.argv[1:] == ['--detector']:
        return measure_detectors()
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
