"""Receptive fields of a detector's feature levels.

``python tools/analysis_tools/receptive_field.py CONFIG [--checkpoint CKPT] [--shape H W]
[--num-samples 4] [--out-dir rf_maps]``

Prints, per level of the neck (or backbone) output: the stride, the
theoretical receptive field (the input pixels that can influence the level's
centre unit at all) and the anchor (or point) sizes of the head. Writes one
PNG heat map per level of the effective receptive field (Luo et al., 2016):
the mean magnitude of the gradient of the centre unit with respect to the
input, over ``--num-samples`` random inputs, with the theoretical field drawn
as a square.

The theoretical field is measured rather than derived from a table: on a copy
of the network in float64 whose convolutions all average their inputs with
positive weights, whose norms are identities and whose max-pools are
average-pools, every path is open, so the centre unit's gradient is non-zero
exactly on its theoretical receptive field. The input grows until the field
no longer touches the border.
"""
import argparse
import copy
import math
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from detlab.apis import init_detector
from detlab.apis.inference import default_input_shape
from detlab.utils import CfgOptionsAction, atomic_write

#: Layers that normalise; the linearised copy replaces them with identities.
NORM_LAYERS = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
#: Largest input side tried for the theoretical field.
MAX_PROBE_SIZE = 4096
#: The effective field's size: the side of the smallest square around the
#: gradient's centre of mass that holds this share of its total.
ERF_MASS = 0.95

FeatureFn = Callable[[Tensor], Sequence[Tensor]]


@dataclass
class LevelField:
    """Receptive field of one feature level.

    Attributes:
        stride (int): Input pixels per feature-map pixel.
        size (int): Side of the theoretical field, in input pixels.
        clipped (bool): The field filled the largest input tried, so ``size``
            is a lower bound.
    """
    stride: int
    size: int
    clipped: bool = False


def linearised(module: nn.Module) -> nn.Module:
    """A float64 copy with every path open (see the module docstring)."""
    model = copy.deepcopy(module).double().eval()
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, NORM_LAYERS):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride,
                                                   child.padding, child.ceil_mode))
    with torch.no_grad():
        for conv in model.modules():
            if isinstance(conv, nn.Conv2d):
                conv.weight.fill_(1.0 / conv.weight[0].numel())
                if conv.bias is not None:
                    conv.bias.zero_()
    return model


def centre_gradients(features: FeatureFn, inputs: Tensor) -> List[Tensor]:
    """Per level, d(sum over channels of the centre unit) / d(inputs).

    Args:
        inputs (Tensor): (1, 3, H, W).

    Returns:
        list[Tensor]: (H, W) absolute gradient summed over input channels, per level.
    """
    inputs = inputs.detach().requires_grad_(True)
    levels = features(inputs)
    gradients = []
    for level in levels:
        height, width = level.shape[-2:]
        unit = level[0, :, height // 2, width // 2].sum()
        gradient, = torch.autograd.grad(unit, inputs, retain_graph=True)
        gradients.append(gradient[0].abs().sum(0))
    return gradients


def theoretical_fields(features: FeatureFn, start_size: int = 256,
                       max_size: int = MAX_PROBE_SIZE) -> List[LevelField]:
    """Stride and theoretical receptive field of each level of ``features``.

    Args:
        features: The *linearised* network's input -> levels function.
        start_size (int): First square input side tried; doubled while a
            level's field touches the border.
    """
    size = start_size
    while True:
        probe = torch.ones(1, 3, size, size, dtype=torch.float64)
        gradients = centre_gradients(features, probe)
        fields, touching = [], False
        with torch.no_grad():
            level_sizes = [level.shape[-1] for level in features(probe)]
        for gradient, level_width in zip(gradients, level_sizes):
            rows = gradient.gt(0).any(1).nonzero()[:, 0]
            cols = gradient.gt(0).any(0).nonzero()[:, 0]
            extent = int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1
            touches = bool(rows.min() == 0 or cols.min() == 0 or rows.max() == size - 1
                           or cols.max() == size - 1)
            touching |= touches
            fields.append(LevelField(stride=round(size / level_width), size=extent,
                                     clipped=touches))
        if not touching or size * 2 > max_size:
            return fields
        size *= 2


def effective_field(gradient: Tensor) -> Tuple[Tuple[float, float], int]:
    """Centre of mass (y, x) of a gradient map and the side of the smallest
    square around it holding ``ERF_MASS`` of the total."""
    grad = gradient.double()
    total = grad.sum()
    rows = torch.arange(grad.shape[0], dtype=grad.dtype)
    cols = torch.arange(grad.shape[1], dtype=grad.dtype)
    cy = float((grad.sum(1) * rows).sum() / total)
    cx = float((grad.sum(0) * cols).sum() / total)
    for half in range(max(grad.shape)):
        y0, y1 = max(0, round(cy) - half), round(cy) + half + 1
        x0, x1 = max(0, round(cx) - half), round(cx) + half + 1
        if grad[y0:y1, x0:x1].sum() >= ERF_MASS * total:
            return (cy, cx), 2 * half + 1
    return (cy, cx), max(grad.shape)


def prior_sizes(head: Optional[nn.Module], num_levels: int) -> List[str]:
    """Anchor sizes (w x h) or point regress ranges of each level, as text."""
    generator = getattr(head, 'prior_generator', None)
    if generator is not None and hasattr(generator, 'base_anchors'):
        texts = []
        for anchors in generator.base_anchors:
            sizes = sorted({(round(float(w)), round(float(h))) for w, h in
                            zip(anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1])})
            texts.append(', '.join(f'{w}x{h}' for w, h in sizes))
        return texts
    ranges = getattr(head, 'regress_ranges', None)
    if ranges is not None:
        return [f'points, regress range {low}-{high}' for low, high in ranges]
    return ['-'] * num_levels


def save_heat_maps(gradients: List[Tensor], fields: List[LevelField], out_dir: str) -> List[str]:
    """One PNG per level: the mean gradient magnitude, the theoretical field as a square."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    paths = []
    for gradient, field in zip(gradients, fields):
        name = f'P{int(math.log2(field.stride))}'
        (cy, cx), erf = effective_field(gradient)
        figure, axis = plt.subplots(figsize=(5, 5))
        heat = (gradient / gradient.max()).numpy()
        axis.imshow(heat, cmap='inferno', interpolation='nearest')
        half = field.size / 2
        axis.add_patch(matplotlib.patches.Rectangle((cx - half, cy - half), field.size,
                                                    field.size, fill=False, color='cyan', lw=1.5))
        height, width = heat.shape
        inside = (cx - half >= 0 and cy - half >= 0 and cx + half <= width
                  and cy + half <= height)
        where = 'cyan' if inside else f'beyond the {height}x{width} input'
        axis.set_title(f'{name} (stride {field.stride}): effective RF {erf} px '
                       f'({ERF_MASS:.0%} of the gradient),\ntheoretical {field.size} px ({where})',
                       fontsize=9)
        path = osp.join(out_dir, f'erf_{name}.png')
        atomic_write(path, lambda tmp_path: figure.savefig(tmp_path, dpi=100,
                                                           bbox_inches='tight'))
        plt.close(figure)
        paths.append(path)
    return paths


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Receptive fields of each feature level')
    parser.add_argument('config', help='config file or config name')
    parser.add_argument('--checkpoint', default=None,
                        help='trained weights for the effective field (default: random init)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'),
                        help="input size of the effective field (default: the test Resize)")
    parser.add_argument('--num-samples', type=int, default=4,
                        help='random inputs the effective field is averaged over')
    parser.add_argument('--out-dir', default='rf_maps', help='folder for the PNG heat maps')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, as in tools/test.py')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    model = init_detector(args.config, args.checkpoint, device='cpu',
                          cfg_options=args.cfg_options)
    fields = theoretical_fields(linearised(model).extract_feat)
    head = getattr(model, 'bbox_head', None)
    print(f'{"level":<6}{"stride":>7}{"theoretical RF":>16}   anchor / point sizes (w x h)')
    for field, priors in zip(fields, prior_sizes(head, len(fields))):
        size = f'>={field.size}' if field.clipped else str(field.size)
        print(f'P{int(math.log2(field.stride)):<5}{field.stride:>7}{size:>16}   {priors}')

    shape = tuple(args.shape) if args.shape else default_input_shape(model.cfg)
    generator = torch.Generator().manual_seed(0)
    total = None
    for _ in range(args.num_samples):
        noise = torch.randn(1, 3, *shape, generator=generator)
        gradients = centre_gradients(model.extract_feat, noise)
        total = gradients if total is None else [t + g for t, g in zip(total, gradients)]
    os.makedirs(args.out_dir, exist_ok=True)
    for path in save_heat_maps([t / args.num_samples for t in total], fields, args.out_dir):
        print(f'effective receptive field heat map: {path}')


if __name__ == '__main__':
    main()
