"""Generate the built-in shapes data set: ``python -m detlab.datasets.shapes OUT_DIR``."""
import argparse
import time
from typing import List, Optional

from .writer import IMAGE_FORMATS, SPLIT_DEFAULTS, generate_shapes


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('out_dir', help='data root, e.g. data/shapes')
    parser.add_argument('--num-train', type=int, default=SPLIT_DEFAULTS['train']['num_images'],
                        help='images in the train split')
    parser.add_argument('--num-val', type=int, default=SPLIT_DEFAULTS['val']['num_images'],
                        help='images in the val split')
    parser.add_argument('--img-format', choices=IMAGE_FORMATS, default='jpg')
    parser.add_argument('--force', action='store_true', help='regenerate even if current')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    for split, num_images in (('train', args.num_train), ('val', args.num_val)):
        start = time.perf_counter()
        ann_file = generate_shapes(args.out_dir, split, num_images,
                                   SPLIT_DEFAULTS[split]['seed'], img_format=args.img_format,
                                   force=args.force)
        print(f'{split}: {num_images} images, {ann_file} ({time.perf_counter() - start:.1f} s)')


if __name__ == '__main__':
    main()
