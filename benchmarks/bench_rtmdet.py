"""detlab's RTMDet against MMDetection 3.3's own model code, same config and same weights.

Both models are built from MMDetection's config file (the byte-for-byte copy under
tests/data/mmdet_3.3_configs/rtmdet/), MMDetection's through its own registry (imported from
its wheel by tools/dev/mmdet_reference.py, which stands in torchvision's ``nms`` for mmcv's
compiled one), and MMDetection's model gets detlab's initial weights, so both compute the same
network on the same batch: random pixels, already normalised, 3 random boxes per image, CPU,
fp32, BatchNorm in training mode. Train step = ``loss`` + backward + SGD step; inference =
``predict`` with rescaling. The models alternate within every round, in an order reversed
every other round; the script prints median times and the ratios (mmdet / detlab: above 1
means detlab is faster). The first loss of each model is printed too: they must agree.
``--channels-last`` also times a copy of detlab's model with its convolution weights in NHWC,
what the config key ``channels_last=True`` does (same weights; losses equal to float
tolerance).

Not run by CI (it needs MMDetection's wheel; see tools/dev/mmdet_reference.py)::

    python benchmarks/bench_rtmdet.py [--arch tiny|s] [--rounds 10] [--threads N]
        [--batch 2] [--size 640] [--device cpu|cuda] [--channels-last]
"""
import copy
import sys
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

import bench_retinanet as common

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools/dev'))

from mmdet_reference import import_mmdet  # noqa: E402

CONFIGS = {'tiny': 'rtmdet_tiny_8xb32-300e_coco.py', 's': 'rtmdet_s_8xb32-300e_coco.py'}


def model_cfg(arch: str):
    cfg = Config.fromfile(str(REPO / 'tests/data/mmdet_3.3_configs/rtmdet' / CONFIGS[arch]))
    model = cfg.model
    model.backbone.init_cfg = None
    model.pop('data_preprocessor')  # the batch comes normalised
    return model


def build(registry, scope: str, cfg):
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(copy.deepcopy(cfg))
    return model.to(common.DEVICE)


def make_samples(sample_type, boxes, labels, size: int) -> list:
    """One ``sample_type`` per image: square ``size`` metainfo and its gt boxes and labels."""
    out = []
    for image_boxes, image_labels in zip(boxes, labels):
        sample = sample_type(metainfo=dict(img_shape=(size, size), pad_shape=(size, size),
                                           ori_shape=(size, size), scale_factor=(1.0, 1.0)))
        sample.gt_instances = InstanceData(bboxes=image_boxes.clone(), labels=image_labels.clone())
        out.append(sample)
    return out


def closures(model, sample_type, inputs, boxes, labels, first_loss: dict, name: str):
    """The train-step and inference closures of ``model`` on one fixed batch."""
    size = inputs.shape[-1]

    def samples():
        return make_samples(sample_type, boxes, labels, size)

    def train_step(optimizer, scaler=None):
        with common.autocast():
            losses = model.loss(inputs, samples())
        if name not in first_loss:
            first_loss[name] = float(sum(sum(v) if isinstance(v, (list, tuple)) else v
                                         for v in losses.values()))
        common.optimise(losses, optimizer, scaler)

    def inference():
        with torch.no_grad(), common.autocast():
            model.predict(inputs, samples(), rescale=True)

    return model, train_step, inference


def main() -> None:
    args = common.parse_args(
        __doc__.splitlines()[0], size=640,
        add_arguments=lambda parser: parser.add_argument('--arch', choices=sorted(CONFIGS),
                                                         default='tiny'))
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.structures import DetDataSample as MMDetSample

    from detlab.registry import MODELS
    from detlab.structures import DetDataSample
    torch.manual_seed(0)
    images, boxes, labels = common.make_inputs()
    inputs = (images.float() - 114.0) / 58.0  # any fixed normalisation: both see the same
    cfg = model_cfg(args.arch)
    detlab_model = build(MODELS, 'detlab', cfg)
    detlab_model.init_weights()
    mmdet_model = build(MMDET_MODELS, 'mmdet', cfg)
    mmdet_model.load_state_dict(detlab_model.state_dict(), strict=True)
    first_loss = {}
    models = {
        'detlab': closures(detlab_model, DetDataSample, inputs, boxes, labels, first_loss,
                           'detlab'),
        'mmdet': closures(mmdet_model, MMDetSample, inputs, boxes, labels, first_loss, 'mmdet'),
    }
    if args.channels_last:
        nhwc_model = copy.deepcopy(detlab_model).to(memory_format=torch.channels_last)
        models['detlab-channels_last'] = closures(nhwc_model, DetDataSample, inputs, boxes,
                                                  labels, first_loss, 'detlab-channels_last')
    common.compare(f'RTMDet-{args.arch}', models, args.rounds, args.warmup, peer='mmdet')
    print('first training loss: ' + '  '.join(f'{k} {v:.6f}' for k, v in first_loss.items()))


if __name__ == '__main__':
    main()
