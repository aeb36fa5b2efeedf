"""detlab's argument checks raise exceptions that are also AssertionError, as MMDetection's
``assert`` statements do, while keeping the built-in type and the message."""
import pytest
import torch

from detlab.models.backbones import ResNet
from detlab.models.data_preprocessors import DetDataPreprocessor
from detlab.models.necks import FPN
from detlab.models.task_modules import BboxOverlaps2D, DeltaXYWHBBoxCoder
from detlab.structures.bbox import HorizontalBoxes, get_box_type
from detlab.structures.errors import (AssertionIndexError, AssertionKeyError, AssertionTypeError,
                                      AssertionValueError)


@pytest.mark.parametrize('cls, builtin', [(AssertionValueError, ValueError),
                                          (AssertionTypeError, TypeError),
                                          (AssertionKeyError, KeyError),
                                          (AssertionIndexError, IndexError)])
def test_each_class_is_its_builtin_and_an_assertion_error(cls, builtin):
    with pytest.raises(AssertionError):
        raise cls('x')
    with pytest.raises(builtin):
        raise cls('x')


def _bad_delta_max_shapes():
    rois = torch.zeros(2, 3, 4)
    DeltaXYWHBBoxCoder().decode(rois, rois, max_shape=[(32, 32)] * 3)


# Each call breaks a check where MMDetection asserts; detlab raises the builtin type in the
# second column with a message matching the third.
BAD_CALLS = [
    ('FPN num_outs', lambda: FPN([8, 16, 32], 8, num_outs=2, start_level=1, end_level=1),
     ValueError, 'num_outs'),
    ('ResNet num_stages', lambda: ResNet(50, num_stages=0), ValueError, 'num_stages'),
    ('boxes shape', lambda: HorizontalBoxes(torch.zeros(3, 5)), ValueError, r'\(\.\.\., 4\)'),
    ('bool index into the box dim', lambda: HorizontalBoxes(torch.zeros(2, 3, 4))[
        torch.ones(2, 3, 4, dtype=torch.bool)], IndexError, 'box dimension'),
    ('unregistered box type', lambda: get_box_type('no_such_box'), KeyError, 'not registered'),
    ('one max_shape per image', _bad_delta_max_shapes, ValueError, 'max_shape'),
    ('overlaps batch dims', lambda: BboxOverlaps2D()(torch.zeros(2, 3, 4), torch.zeros(3, 3, 4)),
     ValueError, 'batch'),
    ('mean without std', lambda: DetDataPreprocessor(mean=[0, 0, 0]), ValueError, 'mean and std'),
]


@pytest.mark.parametrize('call, builtin, message', [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])
def test_bad_arguments_raise_assertion_errors_with_detlabs_message(call, builtin, message):
    with pytest.raises(AssertionError, match=message) as info:
        call()
    assert isinstance(info.value, builtin)
