"""detlab's Faster R-CNN R50-FPN against torchvision's ``fasterrcnn_resnet50_fpn``.

Same input for both (bench_retinanet's: 2 images of 512x512, random pixels, 3 random boxes
each), CPU, fp32, random initialisation, 80 classes, every backbone stage trainable with
BatchNorm in training mode (what torchvision builds without weights). detlab runs
MMDetection's faster-rcnn_r50_fpn config, whose network matches torchvision's (P6 by max
pooling, RPN with 3 anchors per location, 2x1024 fc box head, RoIAlign 7x7). The settings
differ where the libraries' defaults do: RoIAlign samples adaptively in MMDetection (2 points
per bin side in torchvision), and torchvision keeps 2000 proposals per image when training
(MMDetection 1000). Train step = forward + loss + backward + SGD step; inference = forward +
post-processing. Models alternate within every round, in an order reversed every other
round; the script prints median times and the ratios (torchvision / detlab: above 1 means
detlab is faster).

    python benchmarks/bench_faster_rcnn.py [--rounds 10] [--threads N]
"""
import torch
import torchvision

from bench_retinanet import build_detlab, build_torchvision, compare, make_inputs, parse_args

CONFIG = 'configs/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    images, boxes, labels = make_inputs()
    models = {'detlab': build_detlab(images, boxes, labels, extra_convs=None, config=CONFIG),
              'torchvision': build_torchvision(
                  images, boxes, labels, torchvision.models.detection.fasterrcnn_resnet50_fpn,
                  background_class=True)}
    compare('Faster R-CNN R50-FPN', models, args.rounds, args.warmup)


if __name__ == '__main__':
    main()
