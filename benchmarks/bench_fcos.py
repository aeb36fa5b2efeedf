"""detlab's FCOS R50-FPN against torchvision's ``fcos_resnet50_fpn``.

Same input for both (bench_retinanet's: 2 images of 512x512, random pixels, 3 random boxes
each), CPU, fp32, random initialisation, 80 classes, every backbone stage trainable with
BatchNorm in training mode (what torchvision builds without weights). Two detlab variants:
``detlab`` is MMDetection's FCOS config as it is (caffe-style ResNet, which strides in the
first 1x1 conv of a block, so its 3x3 convs run on smaller maps; exp() distances, centerness on
the class tower, IoU loss); ``detlab-same-arch`` changes it into torchvision's network and
training (pytorch-style ResNet, centre sampling, ReLU distances in strides, centerness on the
box tower, GIoU loss: MMDetection's "center-normbbox-centeronreg-giou" options). The
remaining difference is the head convs' bias, which torchvision keeps under GroupNorm. Train
step = forward + loss + backward + SGD step; inference = forward + post-processing. Models
alternate within every round, in an order reversed every other round; the script prints
median times and the ratios (torchvision / detlab: above 1 means detlab is faster).
``--channels-last``, ``--compile``, ``--compile-head``, ``--models`` and ``--peer`` add and pick
variants of ``detlab`` as bench_retinanet.py's do.

    python benchmarks/bench_fcos.py [--rounds 10] [--threads N] [--compile] ...
"""
import functools

import torch
import torchvision

from bench_retinanet import (build_detlab, build_selected, build_torchvision, compare,
                             compiled_variants, make_inputs, parse_args)

CONFIG = 'configs/fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
SAME_ARCH = {
    'model.backbone.style': 'pytorch',
    'model.bbox_head.center_sampling': True,
    'model.bbox_head.center_sample_radius': 1.5,
    'model.bbox_head.norm_on_bbox': True,
    'model.bbox_head.centerness_on_reg': True,
    'model.bbox_head.loss_bbox': dict(type='GIoULoss', loss_weight=1.0),
}


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    images, boxes, labels = make_inputs()
    build = functools.partial(build_detlab, images, boxes, labels, extra_convs=None,
                              config=CONFIG)
    builders = {
        'detlab': build,
        'detlab-same-arch': functools.partial(build, options=SAME_ARCH),
        'torchvision': functools.partial(build_torchvision, images, boxes, labels,
                                         torchvision.models.detection.fcos_resnet50_fpn),
    }
    builders.update(compiled_variants(args, build))
    compare('FCOS R50-FPN', build_selected(builders, args.models, args.peer), args.rounds,
            args.warmup, args.peer)


if __name__ == '__main__':
    main()
