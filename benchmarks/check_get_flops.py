"""Checks tools/analysis_tools/get_flops.py on MMDetection's RetinaNet R50-FPN.

At the given input size, the parameters get_flops reports must equal the
model's own count, and its FLOPs (mmengine's analysis, one multiply-add = one
FLOP) must be within 5% of an independent count of the same forward pass by
``torch.utils.flop_counter.FlopCounterMode`` (which counts a multiply-add as
2 FLOPs, so it is halved). Too slow for the test suite (two forward passes of
R50-FPN at 800x1280 on a CPU); the suite checks the quickstart model instead.

    python benchmarks/check_get_flops.py [--config configs/retinanet/retinanet_r50_fpn_1x_coco.py]
        [--shape 800 1280]
"""
import argparse
import importlib.util
import sys
import warnings
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from detlab.apis import init_detector

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default=str(REPO_ROOT / 'configs/retinanet/'
                                                'retinanet_r50_fpn_1x_coco.py'))
    parser.add_argument('--shape', type=int, nargs=2, default=[800, 1280], metavar=('H', 'W'))
    args = parser.parse_args()
    spec = importlib.util.spec_from_file_location(
        'get_flops', REPO_ROOT / 'tools/analysis_tools/get_flops.py')
    get_flops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(get_flops)

    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = init_detector(args.config, None, device='cpu')
    shape = tuple(args.shape)
    info = get_flops.complexity(model, shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, *shape))
    reference = counter.get_total_flops() / 2
    params = sum(p.numel() for p in model.parameters())
    ratio = info['flops'] / reference
    print(f'input (1, 3, {shape[0]}, {shape[1]}) of {Path(args.config).name}')
    print(f"get_flops:        {info['flops'] / 1e9:.2f} GMac, {info['params']} parameters")
    print(f'FlopCounterMode:  {reference / 1e9:.2f} GMac, model has {params} parameters')
    print(f'ratio get_flops / FlopCounterMode = {ratio:.4f} (within {TOLERANCE:.0%}: '
          f'{abs(ratio - 1) <= TOLERANCE}); parameters equal: {info["params"] == params}')
    return 0 if abs(ratio - 1) <= TOLERANCE and info['params'] == params else 1


if __name__ == '__main__':
    sys.exit(main())
