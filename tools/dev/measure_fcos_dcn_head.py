"""Measure MMDetection 3.3's FCOSHead with ``dcn_on_last_conv=True`` (the last conv of each
tower a DCNv2), which tests/test_models/test_dense_heads/test_fcos_head.py pins.

MMDetection's head gets tests/helpers.py's ``fill_seeded_weights`` (offset convs included),
detlab's loads its state_dict strictly, both run on the same seeded two-level input;
detlab's outputs must equal MMDetection's elementwise, and the script prints per output its
shape and sum of absolute values.

Not run by CI (it needs the MMDetection wheel):

    PYTHONPATH=$PWD python tools/dev/measure_fcos_dcn_head.py
"""
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', '..', 'tests'))
from helpers import fill_seeded_weights  # noqa: E402
from mmdet_reference import import_mmdet  # noqa: E402

#: The head both libraries build.
HEAD = dict(type='FCOSHead', num_classes=5, in_channels=16, feat_channels=16, stacked_convs=2,
            strides=[8, 16], regress_ranges=((-1, 64), (64, 1e8)), dcn_on_last_conv=True,
            norm_cfg=dict(type='GN', num_groups=4), norm_on_bbox=True, centerness_on_reg=True)


def seeded_inputs() -> list:
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(1, 16, 12, 10, generator=generator),
            torch.rand(1, 16, 6, 5, generator=generator)]


def main() -> None:
    import_mmdet()
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope

    from detlab.registry import MODELS
    register_all_modules(init_default_scope=False)
    theirs = MMDET_MODELS.build(HEAD)
    fill_seeded_weights(theirs)
    with DefaultScope.overwrite_default_scope('detlab'):
        ours = MODELS.build(HEAD)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        expected, got = theirs.eval()(seeded_inputs()), ours.eval()(seeded_inputs())
    for name, levels_theirs, levels_ours in zip(('cls', 'bbox', 'centerness'), expected, got):
        for level, (a, b) in enumerate(zip(levels_theirs, levels_ours)):
            assert torch.equal(a, b), (name, level, float((a - b).abs().max()))
            print(f'{name} level {level}: {tuple(a.shape)} {float(a.abs().sum())!r}')


if __name__ == '__main__':
    main()
