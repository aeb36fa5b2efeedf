"""ChannelMapper: per-level convs to one width, extra stride-2 levels."""
import pytest
import torch

from detlab.models.necks import ChannelMapper


def test_levels_widths_and_extra_convs():
    neck = ChannelMapper(in_channels=[8, 16, 32], out_channels=12, kernel_size=1, act_cfg=None,
                         norm_cfg=dict(type='GN', num_groups=4), num_outs=5)
    feats = (torch.rand(2, 8, 16, 16), torch.rand(2, 16, 8, 8), torch.rand(2, 32, 4, 4))
    outs = neck(feats)
    assert [tuple(o.shape) for o in outs] == [(2, 12, 16, 16), (2, 12, 8, 8), (2, 12, 4, 4),
                                              (2, 12, 2, 2), (2, 12, 1, 1)]
    # MMDetection's keys: convs.i.conv/gn, extra_convs.j.conv/gn; the first extra conv
    # reads the last input level, the next one the previous output.
    keys = set(neck.state_dict())
    assert {'convs.0.conv.weight', 'convs.2.gn.bias', 'extra_convs.0.conv.weight',
            'extra_convs.1.gn.weight'} <= keys
    assert neck.extra_convs[0].conv.in_channels == 32 and neck.extra_convs[1].conv.in_channels == 12
    with pytest.raises(ValueError, match='input levels'):
        neck(feats[:2])
    with pytest.raises(ValueError, match='num_outs'):
        ChannelMapper(in_channels=[8, 16], out_channels=4, num_outs=1)
