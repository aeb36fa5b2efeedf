"""Measure MMDetection 3.3's losses for Faster R-CNN with deformable RoI pooling, which
tests/test_models/test_detectors/test_faster_rcnn_dpool.py pins (not run by CI).

The model is the unit-test Faster R-CNN with the roi_layer of MMDetection's
dcn/faster-rcnn_r50_fpn_dpool_1x_coco.py or dcnv2/faster-rcnn_r50_fpn_mdpool_1x_coco.py
(``tiny_dpool_config``). detlab builds it (torch.manual_seed(0), init_weights(), then
``seeded_offset_layers`` gives the zero-initialised last fc layers seeded values, so that the
offsets and masks are not trivial); MMDetection's model loads detlab's state_dict strictly;
torch.manual_seed(1) before each loss().

mmcv's DeformRoIPoolPack and ModulatedDeformRoIPoolPack need mmcv's compiled kernel, which
mmcv-lite lacks: MMDetection's side runs mmcv's modules (their fc layers, reshapes and mask)
with detlab's ``deform_roi_pool`` as the kernel. What this measures is therefore everything
around the kernel (MMDetection's SingleRoIExtractor, heads, sampling and losses with these
layers); the kernel itself is checked against a transcription of mmcv's CUDA kernel in
tests/test_models/test_roi_heads/test_deform_roi_pool.py.

Usage:  PYTHONPATH=$PWD python tools/dev/measure_dpool.py
"""
import logging
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / 'tools/dev'))
sys.path.insert(0, str(REPO / 'tests'))
sys.path.insert(0, str(REPO / 'tests/test_models/test_detectors'))


def main() -> None:
    from mmdet_reference import import_mmdet
    import_mmdet()
    import importlib
    mmcv_deform_roi_pool = importlib.import_module('mmcv.ops.deform_roi_pool')
    from mmengine.config import ConfigDict
    from mmengine.logging import MMLogger
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules as mmdet_register

    from detlab.models.roi_heads.roi_extractors.deform_roi_pool import deform_roi_pool
    from detlab.registry import MODELS
    from detlab.utils import register_all_modules
    from test_faster_rcnn_dpool import CONFIGS, seeded_offset_layers, tiny_dpool_config
    from tiny_faster_rcnn import inputs_and_samples

    MMLogger.get_instance('mmengine').setLevel(logging.ERROR)
    mmcv_deform_roi_pool.deform_roi_pool = deform_roi_pool
    register_all_modules()
    for layer_type, path in sorted(CONFIGS.items()):
        cfg = tiny_dpool_config(path)
        torch.manual_seed(0)
        detlab_model = MODELS.build(cfg)
        detlab_model.init_weights()
        seeded_offset_layers(detlab_model)
        mmdet_register()
        mmdet_model = MMDET_MODELS.build(ConfigDict(cfg))
        register_all_modules()
        assert type(mmdet_model.roi_head.bbox_roi_extractor.roi_layers[0]).__module__ == \
            'mmcv.ops.deform_roi_pool'
        mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
        for name, model in (('mmdet', mmdet_model), ('detlab', detlab_model)):
            inputs, samples = inputs_and_samples()
            model.train()
            torch.manual_seed(1)
            _, log_vars = model.parse_losses(model.loss(inputs, samples))
            print(f'{layer_type} {name}: {dict((k, float(v)) for k, v in log_vars.items())}')


if __name__ == '__main__':
    main()
