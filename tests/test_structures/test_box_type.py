"""The box type registry: forced re-registration and converter checks, as MMDetection's."""
import pytest
import torch

from detlab.structures.bbox import HorizontalBoxes, box_type, register_box, register_box_converter


@pytest.fixture
def registry():
    """The registry tables, restored after the test."""
    saved = [dict(table) for table in
             (box_type.box_types, box_type._box_type_to_name, box_type.box_converters)]
    yield box_type
    for table, copy in zip(
            (box_type.box_types, box_type._box_type_to_name, box_type.box_converters), saved):
        table.clear()
        table.update(copy)


def test_forced_registration_moves_a_class_to_its_new_name(registry):
    class TestBoxes(HorizontalBoxes):
        pass

    register_box('first_name', TestBoxes)
    register_box('second_name', TestBoxes, force=True)
    assert registry.box_types['second_name'] is TestBoxes
    assert 'first_name' not in registry.box_types
    assert registry._box_type_to_name[TestBoxes] == 'second_name'
    assert len(registry.box_types) == len(registry._box_type_to_name)


def test_forced_registration_replaces_the_class_of_a_name(registry):
    class OldBoxes(HorizontalBoxes):
        pass

    class NewBoxes(HorizontalBoxes):
        pass

    register_box('test_name', OldBoxes)
    register_box('test_name', NewBoxes, force=True)
    assert registry.box_types['test_name'] is NewBoxes
    assert OldBoxes not in registry._box_type_to_name


def test_a_converter_must_be_callable(registry):
    with pytest.raises(AssertionError, match='callable') as info:
        register_box_converter('hbox', 'hbox', 'not a function')
    assert isinstance(info.value, TypeError)
    assert 'hbox2hbox' not in registry.box_converters

    @register_box_converter('hbox', 'hbox')
    def identity(tensor):
        return tensor

    assert registry.box_converters['hbox2hbox'] is identity
    assert identity(torch.ones(1, 4)).tolist() == [[1, 1, 1, 1]]
