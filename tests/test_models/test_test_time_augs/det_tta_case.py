"""What the DetTTAModel parity test and tools/dev/measure_det_tta.py share: a small RetinaNet
(the quickstart's ResNet-18 FPN model), its seeded weights, and one coco128 photo's batch of
views from ``TestTimeAug`` (two scales, flipped and not)."""
import copy
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate

#: The photo, and the TTA model and pipeline (as MMDetection's retinanet_tta.py, smaller scales).
IMAGE = 'images/train2017/000000000049.jpg'
TTA_MODEL = dict(type='DetTTAModel',
                 tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))
TTA_PIPELINE = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug',
         transforms=[[dict(type='Resize', scale=s, keep_ratio=True)
                      for s in [(320, 320), (224, 224)]],
                     [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                     [dict(type='PackDetInputs',
                           meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                      'scale_factor', 'flip', 'flip_direction'))]])
]


def retinanet_model_cfg(repo: Path) -> ConfigDict:
    """The quickstart RetinaNet's model config (3 classes), with a low score threshold."""
    cfg = Config.fromfile(str(repo / 'configs/quickstart/retinanet_r18_fpn_shapes.py'))
    model = copy.deepcopy(cfg.model)
    model.test_cfg.score_thr = 0.02
    return model


def seeded_weights(model: torch.nn.Module) -> dict:
    """``init_weights`` after seed 0, then predictor weights N(0, 0.05) so that scores vary."""
    torch.manual_seed(0)
    model.init_weights()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for conv in (model.bbox_head.retina_cls, model.bbox_head.retina_reg):
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * 0.05)
    return {key: value.clone() for key, value in model.state_dict().items()}


def tta_batch(coco128: Path, transforms_registry) -> dict:
    """The collated views of the photo: ``inputs`` and ``data_samples``, one list per view."""
    from mmcv.transforms import Compose
    with_registry = [transforms_registry.build(t) for t in TTA_PIPELINE]
    result = Compose(with_registry)(dict(img_path=str(coco128 / IMAGE), img_id=49))
    return pseudo_collate([result])
