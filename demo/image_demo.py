"""Detect objects in images: ``python demo/image_demo.py INPUTS MODEL [options]``.

INPUTS is an image file or a folder of images; MODEL a config file or a config
name (``python -c "from detlab.apis import DetInferencer; print(DetInferencer.list_models())"``).
Drawn images go to ``OUT_DIR/vis/``, predictions as JSON to ``OUT_DIR/preds/``.

Example::

    python demo/image_demo.py data/shapes/val/ configs/quickstart/retinanet_r18_fpn_shapes.py \\
        --weights work_dirs/retinanet_r18_fpn_shapes/iter_1600.pth --device cpu
"""
import argparse

from detlab.apis import DetInferencer
from detlab.datasets.transforms import DEFAULT_MAX_PIXELS

PALETTES = ('coco', 'voc', 'citys', 'random', 'none')


def parse_args() -> tuple:
    parser = argparse.ArgumentParser(description='Detect objects in images with a detlab model')
    parser.add_argument('inputs', type=str,
                        help='an image file or a folder of images (local: URLs are refused)')
    parser.add_argument('model', type=str, help='config file or config name')
    parser.add_argument('--weights', default=None, help='checkpoint file')
    parser.add_argument('--out-dir', type=str, default='outputs', help='output folder')
    parser.add_argument('--device', default=None,
                        help="device, e.g. 'cpu' or 'cuda:0' (default: the first GPU, else CPU)")
    parser.add_argument('--pred-score-thr', type=float, default=0.3,
                        help='draw boxes scoring above this')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    parser.add_argument('--show', action='store_true', help='show each image in a window')
    parser.add_argument('--no-save-vis', action='store_true', help='do not save drawn images')
    parser.add_argument('--no-save-pred', action='store_true',
                        help='do not save the predictions as JSON')
    parser.add_argument('--print-result', action='store_true', help='print the predictions')
    parser.add_argument('--palette', default='none', choices=PALETTES,
                        help="box colours; 'none' uses the dataset's own")
    parser.add_argument('--max-pixels', type=int, default=None,
                        help='refuse images whose header declares more pixels (width x '
                        "height) than this (default: the config's LoadImageFromFile limit, "
                        f'{DEFAULT_MAX_PIXELS:,} = 2**27 unless it sets one)')
    call_args = vars(parser.parse_args())
    if call_args['max_pixels'] is None:
        call_args['max_pixels'] = 'config'
    if call_args['no_save_vis'] and call_args['no_save_pred']:
        call_args['out_dir'] = ''
    init_args = {key: call_args.pop(key) for key in ('model', 'weights', 'device', 'palette',
                                                'max_pixels')}
    return init_args, call_args


def main() -> None:
    init_args, call_args = parse_args()
    inferencer = DetInferencer(**init_args)
    inferencer(**call_args)
    if call_args['out_dir'] and not (call_args['no_save_vis'] and call_args['no_save_pred']):
        print(f"Results have been saved at {call_args['out_dir']}")


if __name__ == '__main__':
    main()
