"""What the DetTTAModel parity test and tools/dev/measure_det_tta.py share: two small
detectors (the quickstarts' RetinaNet ResNet-18 FPN and RTMDet-tiny), their seeded weights,
and one coco128 photo's batch of views from ``TestTimeAug`` (two scales, flipped and not), each
with its TTA config as MMDetection's ``retinanet_tta.py`` and ``rtmdet_tta.py`` give it (smaller
scales)."""
import copy
from pathlib import Path

import torch
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate

from helpers import fill_seeded_weights

#: The photo.
IMAGE = 'images/train2017/000000000049.jpg'
SCALES = [(320, 320), (224, 224)]
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip',
             'flip_direction')
FLIPS = [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)]


def tta_pipeline(*after_flip: list) -> list:
    """Load, then ``TestTimeAug`` over the two scales and both flips, the transform lists
    ``after_flip``, and packing."""
    return [dict(type='LoadImageFromFile', backend_args=None),
            dict(type='TestTimeAug',
                 transforms=[[dict(type='Resize', scale=s, keep_ratio=True) for s in SCALES],
                             FLIPS, *after_flip,
                             [dict(type='PackDetInputs', meta_keys=META_KEYS)]])]


#: Per case: the quickstart config, the head's predictor attributes (conv or ModuleList of
#: convs) that get random weights N(0, std), a score threshold low enough to keep boxes of the
#: random head, the TTA model and the TTA pipeline. ``std=None``: RTMDet's initial features
#: vanish in eval mode, so every weight is drawn by ``helpers.fill_seeded_weights`` instead, and
#: the predictors' biases are set so that boxes have positive sides and scores vary around 0.3.
CASES = dict(
    retinanet=dict(
        config='configs/quickstart/retinanet_r18_fpn_shapes.py',
        predictors=('retina_cls', 'retina_reg'), std=0.05, score_thr=0.02,
        tta_model=dict(type='DetTTAModel',
                       tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5), max_per_img=100)),
        pipeline=tta_pipeline()),
    rtmdet=dict(
        config='configs/quickstart/rtmdet_tiny_shapes.py',
        predictors=('rtm_cls', 'rtm_reg'), std=None, score_thr=0.02,
        tta_model=dict(type='DetTTAModel',
                       tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.6), max_per_img=100)),
        pipeline=tta_pipeline([dict(type='Pad', size=(320, 320),
                                    pad_val=dict(img=(114, 114, 114)))],
                              [dict(type='LoadAnnotations', with_bbox=True)])),
)


def model_cfg(repo: Path, case: str = 'retinanet') -> ConfigDict:
    """The quickstart model config of ``case`` (3 classes), with a low score threshold."""
    cfg = Config.fromfile(str(repo / CASES[case]['config']))
    model = copy.deepcopy(cfg.model)
    model.test_cfg.score_thr = CASES[case]['score_thr']
    return model


def retinanet_model_cfg(repo: Path) -> ConfigDict:
    """The RetinaNet case's model config."""
    return model_cfg(repo, 'retinanet')


def seeded_weights(model: torch.nn.Module, case: str = 'retinanet') -> dict:
    """``init_weights`` after seed 0, then the case's predictor weights N(0, std) so that
    scores and boxes vary."""
    torch.manual_seed(0)
    model.init_weights()
    generator = torch.Generator().manual_seed(1)
    std = CASES[case]['std']
    if std is None:
        fill_seeded_weights(model, 0)
    with torch.no_grad():
        for name, bias in zip(CASES[case]['predictors'], (-1.0, 2.0)):
            predictor = getattr(model.bbox_head, name)
            convs = predictor if isinstance(predictor, torch.nn.ModuleList) else [predictor]
            for conv in convs:
                if std is None:
                    conv.bias.fill_(bias)
                else:
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * std)
    return {key: value.clone() for key, value in model.state_dict().items()}


def tta_batch(coco128: Path, transforms_registry, case: str = 'retinanet') -> dict:
    """The collated views of the photo: ``inputs`` and ``data_samples``, one list per view."""
    from mmcv.transforms import Compose
    with_registry = [transforms_registry.build(t) for t in CASES[case]['pipeline']]
    result = Compose(with_registry)(dict(img_path=str(coco128 / IMAGE), img_id=49))
    return pseudo_collate([result])
