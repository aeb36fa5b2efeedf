"""detlab's SSD300-VGG16 and SSDLite against torchvision's ``ssd300_vgg16`` and
``ssdlite320_mobilenet_v3_large``.

Same input for each pair: 2 images (random pixels, 3 random boxes each) of 300x300 for
SSD300 and 320x320 for SSDLite, CPU, fp32, random initialisation, 80 classes (torchvision
gets 81: its class 0 is the background; detlab's softmax has the background last). Train
step = forward + loss + backward + SGD step; inference = forward + post-processing. The
models alternate within every round (bench_retinanet's ``compare``); the script prints
median times and the ratios torchvision / detlab (above 1: detlab is faster).

What is compared:

* SSD300-VGG16: MMDetection's ``configs/ssd/ssd300_coco.py`` against ``ssd300_vgg16``.
  The same network (VGG16 with dilated fc6/fc7 as convs, L2Norm on conv4_3, the extra
  layers to 1x1, 4/6/6/6/4/4 anchors per cell: 8732 priors, 3x3 predictors) and the same
  loss (3:1 hard negative mining, Smooth L1). Differences: anchor sizes (MMDetection's
  ``basesize_ratio_range=(0.15, 0.9)``, torchvision's scales 0.07-1.05), post-processing
  settings (MMDetection: score > 0.02, 1000 candidates, NMS 0.45, 200 kept; torchvision:
  score > 0.01, 400 candidates per class, NMS 0.45, 200 kept) and torchvision's
  transform, which resizes every image to 300x300 (a no-op size here, still an
  interpolation) and normalises inside the model.
* SSDLite: MMDetection's ``configs/ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py``
  (MobileNetV2, width 1.0, features at strides 16 and 32, depthwise extra layers to 512,
  256, 256, 128 channels, depthwise 3x3 + BN + ReLU6 and 1x1 predictors, 6 anchors per
  cell) against ``ssdlite320_mobilenet_v3_large`` (MobileNetV3-Large with a halved last
  stage, the same extra-layer widths and head layout, 6 anchors per cell). The backbones
  differ: MMDetection has no SSDLite on MobileNetV3 and torchvision none on MobileNetV2,
  so this pair compares the closest models, not the same network (the parameter counts
  are printed).

    python benchmarks/bench_ssd.py [--rounds 10] [--threads N] [--batch 2]
        [--models ssd300 ssdlite]
"""
import sys

import torch
import torchvision
from mmengine.config import Config
from mmengine.structures import InstanceData

import bench_retinanet
from bench_retinanet import compare, make_inputs, optimise, parse_args
from detlab.registry import MODELS
from detlab.structures import DetDataSample

#: name -> (detlab config, torchvision builder, input size)
CASES = {
    'ssd300': ('configs/ssd/ssd300_coco.py', torchvision.models.detection.ssd300_vgg16, 300),
    'ssdlite': ('configs/ssd/ssdlite_mobilenetv2-scratch_8xb24-600e_coco.py',
                torchvision.models.detection.ssdlite320_mobilenet_v3_large, 320),
}


def build_detlab_ssd(config: str, images, boxes, labels):
    """detlab's model of ``config`` (no pretrained backbone) and its train-step and
    inference closures."""
    model_cfg = Config.fromfile(config).model
    model_cfg.backbone.init_cfg = None
    model = MODELS.build(model_cfg).to(bench_retinanet.DEVICE)
    model.init_weights()
    size = bench_retinanet.IMAGE_SIZE

    def batch():
        samples = []
        for image_boxes, image_labels in zip(boxes, labels):
            sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                                 scale_factor=(1.0, 1.0)))
            sample.gt_instances = InstanceData(bboxes=image_boxes.clone(),
                                               labels=image_labels.clone())
            samples.append(sample)
        return dict(inputs=list(images), data_samples=samples)

    def train_step(optimizer, scaler=None):
        data = model.data_preprocessor(batch(), training=True)
        optimise(model(**data, mode='loss'), optimizer, scaler)

    def inference():
        with torch.no_grad():
            data = model.data_preprocessor(batch(), training=False)
            model(**data, mode='predict')

    return model, train_step, inference


def build_torchvision_ssd(builder, images, boxes, labels):
    """torchvision's ``builder`` without weights (81 classes, background 0) and its
    train-step and inference closures."""
    model = builder(weights=None, weights_backbone=None,
                    num_classes=bench_retinanet.NUM_CLASSES + 1).to(bench_retinanet.DEVICE)
    float_images = [image.float() / 255.0 for image in images]
    targets = [dict(boxes=image_boxes, labels=image_labels + 1)
               for image_boxes, image_labels in zip(boxes, labels)]

    def train_step(optimizer, scaler=None):
        optimise(model(float_images, targets), optimizer, scaler)

    def inference():
        with torch.no_grad():
            model(float_images)

    return model, train_step, inference


def main() -> None:
    models_arg = sys.argv.index('--models') if '--models' in sys.argv else None
    names = list(CASES)
    if models_arg is not None:
        names = sys.argv[models_arg + 1:]
        del sys.argv[models_arg:]
        unknown = sorted(set(names) - set(CASES))
        if unknown:
            raise SystemExit(f'bench_ssd.py: unknown --models {unknown}; choose from '
                             f'{sorted(CASES)}')
    args = parse_args(__doc__.splitlines()[0])
    for name in names:
        config, builder, size = CASES[name]
        bench_retinanet.IMAGE_SIZE = size
        torch.manual_seed(0)
        images, boxes, labels = make_inputs()
        models = {'detlab': build_detlab_ssd(config, images, boxes, labels),
                  'torchvision': build_torchvision_ssd(builder, images, boxes, labels)}
        compare(f'{name} ({config})', models, args.rounds, args.warmup)


if __name__ == '__main__':
    main()
