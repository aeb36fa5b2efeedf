"""See what the model sees: ``browse_dataset.py CONFIG [--output-dir DIR] [--not-show]``.

Runs every sample of the config's training dataset through its pipeline
(augmentations included) and draws the gt boxes, with class names, and any
gt masks (DetLocalVisualizer) on the packed image. Images are shown in a window unless
``--not-show``, and written to ``--output-dir`` under their file names.
"""
import argparse
import os.path as osp
from typing import Dict

import numpy as np
from mmengine.utils import ProgressBar

from detlab.registry import DATASETS, VISUALIZERS
from detlab.utils import CfgOptionsAction, load_config, register_all_modules
from detlab.utils.atomic import imwrite_atomic


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Draw the training samples of a config')
    parser.add_argument('config', help='config file path')
    parser.add_argument('--output-dir', default=None, help='folder to write the images to')
    parser.add_argument('--not-show', default=False, action='store_true',
                        help='do not open a window (for machines without a display)')
    parser.add_argument('--show-interval', type=float, default=2,
                        help='seconds each image stays in the window')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def to_rgb_uint8(inputs) -> np.ndarray:
    """(3, H, W) BGR tensor of any dtype -> (H, W, 3) RGB uint8 array."""
    img = inputs.permute(1, 2, 0).float().clamp(0, 255).byte().numpy()
    return np.ascontiguousarray(img[..., ::-1])


def unique_name(name: str, seen: Dict[str, int]) -> str:
    """``name``, or ``stem_k.ext`` when ``name`` was already written in this run."""
    count = seen.get(name, 0)
    seen[name] = count + 1
    if count == 0:
        return name
    stem, ext = osp.splitext(name)
    return f'{stem}_{count}{ext}'


def main() -> None:
    args = parse_args()
    register_all_modules(init_default_scope=False)
    cfg = load_config(args.config, args.cfg_options)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    visualizer_cfg = dict(cfg.get('visualizer', dict(type='DetLocalVisualizer')))
    # No vis backends: this tool writes its own files, atomically.
    visualizer_cfg.update(name='browse_dataset', vis_backends=None)
    visualizer = VISUALIZERS.build(visualizer_cfg)
    visualizer.dataset_meta = dataset.metainfo

    seen: Dict[str, int] = {}
    progress = ProgressBar(len(dataset))
    for index in range(len(dataset)):
        item = dataset[index]
        data_sample = item['data_samples']
        img = to_rgb_uint8(item['inputs'])
        name = osp.basename(data_sample.get('img_path', f'{index:06d}.jpg'))
        visualizer.add_datasample(name, img, data_sample, draw_pred=False,
                                  show=not args.not_show, wait_time=args.show_interval)
        if args.output_dir is not None:
            drawn = visualizer.get_image()
            out_file = osp.join(args.output_dir, unique_name(name, seen))
            imwrite_atomic(drawn[..., ::-1], out_file)
        progress.update()


if __name__ == '__main__':
    main()
