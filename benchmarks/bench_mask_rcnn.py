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

Both libraries keep detections scoring 0.05 or more. With random weights detlab's class
scores are all near 1/81 (MMDetection's init: zero-initialised residual branches, fc_cls
std 0.01), so it keeps none and its inference stops after the box head, while torchvision's
(whose features grow through the un-normalised residual branches) keeps 100 per image and
runs its mask head and paste on them. ``--score-thr 0`` gives both models that threshold, so
each keeps its 100 best detections per image and computes and pastes 200 masks: the same
work. ``--sampling-ratio N`` adds ``detlab-sampling_ratioN``: ``detlab`` with RoIAlign
taking N samples per bin side in both RoI extractors (torchvision's model takes 2) instead
of MMDetection's adaptive ``sampling_ratio=0``; that changes the pooled features and so the
detections, a recipe a user chooses with ``--cfg-options``, not MMDetection's numbers.

    python benchmarks/bench_mask_rcnn.py [--rounds 10] [--threads N] [--device cpu|cuda]
        [--score-thr T] [--sampling-ratio N]
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


def add_arguments(parser) -> None:
    parser.add_argument('--score-thr', type=float, default=None,
                        help="both models' detection score threshold (default: their own, "
                             '0.05); 0 makes both keep 100 detections per image')
    parser.add_argument('--sampling-ratio', type=int, default=None,
                        help='also time detlab with this RoIAlign sampling_ratio')


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    torch.manual_seed(0)
    images, boxes, labels = make_inputs()
    masks = ellipse_masks(boxes, bench_retinanet.IMAGE_SIZE)
    options = {}
    if args.score_thr is not None:
        options['model.test_cfg.rcnn.score_thr'] = args.score_thr
    variants = {'detlab': options}
    if args.sampling_ratio is not None:
        variants[f'detlab-sampling_ratio{args.sampling_ratio}'] = dict(options, **{
            f'model.roi_head.{extractor}.roi_layer.sampling_ratio': args.sampling_ratio
            for extractor in ('bbox_roi_extractor', 'mask_roi_extractor')})
    models = {name: build_detlab(images, boxes, labels, extra_convs=None, config=CONFIG,
                                 options=variant_options, masks=masks)
              for name, variant_options in variants.items()}
    models['torchvision'] = build_torchvision(
        images, boxes, labels, torchvision.models.detection.maskrcnn_resnet50_fpn,
        background_class=True, masks=masks)
    if args.score_thr is not None:
        models['torchvision'][0].roi_heads.score_thresh = args.score_thr
    compare('Mask R-CNN R50-FPN', models, args.rounds, args.warmup)


if __name__ == '__main__':
    main()
