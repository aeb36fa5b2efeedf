"""FLOPs and parameters of a detector: ``python tools/analysis_tools/get_flops.py CONFIG
[--shape H W] [--cfg-options ...]``.

Counted by mmengine's analysis (fvcore's rules: one multiply-add is one FLOP)
over the forward pass from the network input to the head's raw outputs, on one
(1, 3, H, W) image; post-processing (decoding, NMS) is not counted. Prints the
totals and a table per module.
"""
import argparse
import warnings
from typing import Tuple

import torch
from mmengine.analysis import get_model_complexity_info
from torch import nn

from detlab.apis import init_detector
from detlab.utils import CfgOptionsAction

#: MMDetection's default input size (H, W).
DEFAULT_SHAPE = (1280, 800)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Count the FLOPs and parameters of a detector')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('--shape', type=int, nargs='+', default=list(DEFAULT_SHAPE),
                        help='input size: H W, or one number for a square (default 1280 800)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/train.py')
    return parser.parse_args()


def input_shape(shape: list) -> Tuple[int, int]:
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2 and min(shape) > 0:
        return shape[0], shape[1]
    raise ValueError(f'--shape takes H W or one positive size, got {shape}.')


def complexity(model: nn.Module, shape: Tuple[int, int]) -> dict:
    """mmengine's complexity analysis of ``model``'s tensor-mode forward on (1, 3, H, W).

    Returns:
        dict: ``flops`` (multiply-adds), ``params``, ``flops_str``,
        ``params_str`` and ``out_table`` (per module).
    """
    inputs = torch.zeros(1, 3, *shape, device=next(model.parameters()).device)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return get_model_complexity_info(model, inputs=(inputs,), show_table=True,
                                         show_arch=False)


def main() -> None:
    args = parse_args()
    shape = input_shape(args.shape)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # random weights: FLOPs do not depend on them
        model = init_detector(args.config, None, device='cpu', cfg_options=args.cfg_options)
    info = complexity(model, shape)
    print(info['out_table'])
    split = '=' * 30
    print(f'{split}\nInput shape: (1, 3, {shape[0]}, {shape[1]})\n'
          f"Flops: {info['flops_str']} ({info['flops']} multiply-adds)\n"
          f"Params: {info['params_str']} ({info['params']})\n{split}")
    print('FLOPs are those of the network up to the head outputs; box decoding and NMS '
          'are not counted. Check that they fit your use before citing them.')


if __name__ == '__main__':
    main()
