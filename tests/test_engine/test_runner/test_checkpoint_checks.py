"""The checks DetRunner makes on checkpoints, on tiny models and files."""
import pytest
import torch

from detlab.engine.runner.checkpoint_checks import (checkpoint_from_last_checkpoint,
                                                    damaged_resume_message, is_intact,
                                                    require_checkpoint_fits,
                                                    require_training_checkpoint,
                                                    saved_checkpoints)

REVISE_KEYS = [(r'^module\.', '')]


def test_saved_checkpoints_are_ordered_by_number_not_name(tmp_path):
    for name in ('iter_10.pth', 'iter_9.pth', 'iter_10-abcdef12.pth', 'notes.txt'):
        (tmp_path / name).write_bytes(b'')
    assert [p.rsplit('/', 1)[1] for p in saved_checkpoints(str(tmp_path))] == [
        'iter_9.pth', 'iter_10.pth']


def test_training_checkpoint_is_accepted_and_model_only_refused():
    require_training_checkpoint({'meta': {'epoch': 0, 'iter': 4}, 'state_dict': {}}, 'a.pth')
    with pytest.raises(ValueError, match=r"a.pth is not a training checkpoint.*\['state_dict'\]"
                       r".*load_from='a.pth'"):
        require_training_checkpoint({'state_dict': {}}, 'a.pth')


def test_checkpoint_that_fits_passes_and_mismatches_are_named_in_model_order():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Linear(3, 1))
    state_dict = {f'module.{key}': value for key, value in model.state_dict().items()}
    require_checkpoint_fits(model, {'state_dict': state_dict}, 'm.pth', REVISE_KEYS)
    state_dict = dict(model.state_dict(), extra=torch.zeros(1))
    del state_dict['0.bias']
    state_dict['1.weight'] = torch.zeros(2, 3)
    with pytest.raises(ValueError) as error:
        require_checkpoint_fits(model, state_dict, 'm.pth', REVISE_KEYS)
    message = str(error.value)
    assert 'm.pth does not fit the model Sequential' in message and '3 mismatches' in message
    assert message.index('0.bias missing from the checkpoint (model: (3,))') < message.index(
        '1.weight: checkpoint (2, 3), model (1, 3)') < message.index('extra unexpected')


def test_many_mismatches_are_counted_beyond_the_first_five():
    model = torch.nn.Sequential(*[torch.nn.Linear(1, 1) for _ in range(4)])
    with pytest.raises(ValueError, match=r'8 mismatches.*\(and 3 more\)'):
        require_checkpoint_fits(model, {}, 'empty.pth', REVISE_KEYS)


def test_last_checkpoint_pointer(tmp_path):
    assert checkpoint_from_last_checkpoint(str(tmp_path)) is None  # a fresh work dir
    saved = tmp_path / 'epoch_1.pth'
    torch.save({}, saved)
    (tmp_path / 'last_checkpoint').write_text(f'{saved}\n')
    assert checkpoint_from_last_checkpoint(str(tmp_path)) == str(saved)
    (tmp_path / 'last_checkpoint').write_text('')
    with pytest.raises(FileNotFoundError, match=r'it is empty\. Checkpoints in .*: epoch_1\.pth'):
        checkpoint_from_last_checkpoint(str(tmp_path))
    saved.unlink()
    with pytest.raises(FileNotFoundError, match='There are no checkpoints in'):
        checkpoint_from_last_checkpoint(str(tmp_path))


def test_damaged_checkpoint_points_at_the_latest_intact_one(tmp_path):
    for number in (1, 2, 3):
        torch.save({'number': number}, tmp_path / f'iter_{number}.pth')
    broken = tmp_path / 'iter_3.pth'
    broken.write_bytes(broken.read_bytes()[:100])
    (tmp_path / 'iter_2.pth').write_bytes((tmp_path / 'iter_2.pth').read_bytes()[:-30])
    assert not is_intact(str(broken)) and is_intact(str(tmp_path / 'iter_1.pth'))
    message = damaged_resume_message(str(broken), 'cannot read it')
    assert message.startswith('cannot read it. The latest intact checkpoint')
    assert f'--resume {tmp_path / "iter_1.pth"}' in message
