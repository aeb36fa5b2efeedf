"""detlab.utils.checkpoint: weights_only loading with mmengine's allow-list, damaged files."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.optim import OneCycleParamScheduler

from detlab.utils.checkpoint import DamagedCheckpointError, load_checkpoint_file


def mmengine_like_checkpoint() -> dict:
    hub = MessageHub.get_instance('detlab-test-fixes')
    hub.update_scalar('train/loss', np.float64(0.5))
    hub.update_info('iter', 7)
    return dict(meta=dict(epoch=1, iter=7, seed=np.int64(3), message_hub=hub.state_dict(),
                          mean=np.array([1.0, 2.0])),
                state_dict={'w': torch.ones(2)},
                optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]))


def test_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / 'iter_7.pth'
    torch.save(mmengine_like_checkpoint(), path)
    # The trap this fixes: torch >= 2.6 refuses mmengine's own checkpoints.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    loaded = load_checkpoint_file(str(path))
    assert loaded['meta']['iter'] == 7
    buffer = loaded['meta']['message_hub']['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer) and buffer.current() == 0.5
    assert np.array_equal(loaded['meta']['mean'], [1.0, 2.0])


class NotAllowed:
    def __reduce__(self):
        return (os.getcwd, ())


def test_objects_outside_the_allow_list_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': NotAllowed()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        load_checkpoint_file(str(path))


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


class ReachesIntoHistoryBuffer:
    def __reduce__(self):
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_is_only_allowed_for_history_buffer_statistics(tmp_path):
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': ReachesIntoHistoryBuffer()}, path)
    with pytest.raises(Exception, match='HistoryBuffer statistics'):
        load_checkpoint_file(str(path))


class ReachesIntoOneCycle:
    def __reduce__(self):
        return (getattr, (OneCycleParamScheduler, 'step'))


class BuildsOneCycle:
    def __reduce__(self):
        return (OneCycleParamScheduler, (None, 'lr'))


@pytest.mark.parametrize('payload', [ReachesIntoOneCycle(), BuildsOneCycle()])
def test_one_cycle_class_only_yields_its_annealing_functions(tmp_path, payload):
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': payload}, path)
    with pytest.raises(Exception, match='OneCycle|not callable'):
        load_checkpoint_file(str(path))
    torch.save({'anneal_func': OneCycleParamScheduler._annealing_linear}, path)
    loaded = load_checkpoint_file(str(path))['anneal_func']
    assert loaded is OneCycleParamScheduler._annealing_linear


def test_checkpoints_written_under_numpy_1_load(tmp_path):
    """numpy 1.x pickles name numpy.core.multiarray; numpy 2 renamed it numpy._core."""
    buffer = io.BytesIO()
    torch.save({'meta': {'loss': np.float64(1.5), 'mean': np.arange(3)}}, buffer,
               _use_new_zipfile_serialization=False)
    legacy = buffer.getvalue().replace(b'numpy._core.multiarray', b'numpy.core.multiarray')
    path = tmp_path / 'numpy1.pth'
    path.write_bytes(legacy)
    meta = load_checkpoint_file(str(path))['meta']
    assert meta['loss'] == 1.5 and meta['mean'].tolist() == [0, 1, 2]


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'epoch_2.pth'
    torch.save(mmengine_like_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DamagedCheckpointError, match='truncated or damaged') as error:
        load_checkpoint_file(str(path))
    assert str(path) in str(error.value) and '200 bytes' in str(error.value)
