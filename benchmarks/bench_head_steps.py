"""A dense head's ``loss_by_feat`` (with backward) and ``predict_by_feat`` alone, on fixed features.

Times only the head's own work (targets, losses, decoding, NMS), which the whole-model
benchmarks hide behind the backbone, in CPU time of this process so that other load on the
machine matters less. Run it on two trees to compare them; the loss value printed last must
agree between them::

    PYTHONPATH=$PWD python benchmarks/bench_head_steps.py [--config CONFIG] [--size 512]
"""
import argparse
import logging
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.structures import InstanceData

from detlab.registry import MODELS
from detlab.utils import register_all_modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/retinanet/retinanet_r50_fpn_1x_coco.py')
    parser.add_argument('--size', type=int, default=512, help='input side in pixels')
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--rounds', type=int, default=20)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    register_all_modules()
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = Config.fromfile(args.config)
    head = MODELS.build(dict(cfg.model.bbox_head, train_cfg=cfg.model.train_cfg,
                             test_cfg=cfg.model.test_cfg))
    head.init_weights()
    strides = [stride if isinstance(stride, int) else stride[0]
               for stride in head.prior_generator.strides]
    feats = [torch.randn(args.batch, head.in_channels, -(-args.size // s), -(-args.size // s))
             for s in strides]
    with torch.no_grad():
        outs = [[level.clone().requires_grad_() for level in output] for output in head(feats)]
    generator = torch.Generator().manual_seed(1)
    gts = []
    for _ in range(args.batch):
        xy = torch.rand(8, 2, generator=generator) * args.size * 0.6
        wh = 16 + torch.rand(8, 2, generator=generator) * args.size * 0.3
        gts.append(InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                labels=torch.randint(0, head.num_classes, (8, ),
                                                     generator=generator)))
    metas = [dict(img_shape=(args.size, args.size), pad_shape=(args.size, args.size),
                  scale_factor=(1.0, 1.0))] * args.batch

    def total(losses: dict) -> torch.Tensor:
        return sum(sum(v) if isinstance(v, list) else v for v in losses.values())

    def loss_step() -> None:
        total(head.loss_by_feat(*outs, gts, metas)).backward()

    def predict() -> None:
        with torch.no_grad():
            head.predict_by_feat(*outs, batch_img_metas=metas, rescale=True)

    for name, step in (('loss+backward', loss_step), ('predict', predict)):
        times = []
        for index in range(args.rounds + 2):
            start = time.process_time()
            step()
            if index >= 2:  # warm-up rounds
                times.append(time.process_time() - start)
        print(f'{name:14s} CPU time median {1000 * statistics.median(times):.1f} ms  '
              f'min {1000 * min(times):.1f} ms')
    with torch.no_grad():
        print(f'loss value {float(total(head.loss_by_feat(*outs, gts, metas))):.9g}')


if __name__ == '__main__':
    main()
