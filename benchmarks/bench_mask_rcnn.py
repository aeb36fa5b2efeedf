"""detlab's Mask R-CNN R50-FPN against torchvision's ``maskrcnn_resnet50_fpn``.

Same input for both (bench_retinanet's: 2 images of 512x512, random pixels, 3 random boxes
each, and as each box's mask the ellipse inscribed in it), CPU by default, fp32, random
initialisation, 80 classes, every backbone stage trainable with BatchNorm in training mode
(what torchvision builds without weights). detlab runs MMDetection's mask-rcnn_r50_fpn
config, whose network matches torchvision's (bench_faster_rcnn's box part; a 4-conv
FCN mask head on 14x14 RoIs giving 28x28 masks). The settings differ where the libraries'
defaults do: RoIAlign samples adaptively in MMDetection (2 points per bin side in
torchvision), torchvision keeps 2000 proposals per image when training (MMDetection 1000),
and MMDetection pastes every predicted mask into the image on the CPU one box at a time
(torchvision pastes each into its box's padded region too). Train step = forward + loss +
backward + SGD step; inference = forward + post-processing, masks pasted. Models alternate
within every round, in an order reversed every other round; the script prints median times
and the ratios (torchvision / detlab: above 1 means detlab is faster).
``--device cuda --amp bf16 --batch 8 --size 800`` is the GPU case.

    python benchmarks/bench_mask_rcnn.py [--rounds 10] [--threads N] [--device cpu|cuda]
"""
import cv2
import numpy as np
import torch
import torchvision

import bench_retinanet
from bench_retinanet import build_detlab, build_torchvision, compare, make_inputs, parse_args

CONFIG = 'configs/mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'


def ellipse_masks(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """(B, N, size, size) uint8: the ellipse inscribed in each (B, N, 4) box."""
    masks = np.zeros((*boxes.shape[:2], size, size), np.uint8)
    for image_masks, image_boxes in zip(masks, boxes.cpu().tolist()):
        for mask, (x1, y1, x2, y2) in zip(image_masks, image_boxes):
            centre = (int(round((x1 + x2) / 2)), int(round((y1 + y2) / 2)))
            axes = (max(int((x2 - x1) / 2), 1), max(int((y2 - y1) / 2), 1))
            cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return torch.from_numpy(masks).to(boxes.device)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    torch.manual_seed(0)
    images, boxes, labels = make_inputs()
    masks = ellipse_masks(boxes, bench_retinanet.IMAGE_SIZE)
    models = {'detlab': build_detlab(images, boxes, labels, extra_convs=None, config=CONFIG,
                                     masks=masks),
              'torchvision': build_torchvision(
                  images, boxes, labels, torchvision.models.detection.maskrcnn_resnet50_fpn,
                  background_class=True, masks=masks)}
    compare('Mask R-CNN R50-FPN', models, args.rounds, args.warmup)


if __name__ == '__main__':
    main()
