"""detlab.engine.checkpoint: mmengine's loader through detlab's, offline; atomic writes."""
import errno
import os

import numpy as np
import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from detlab.engine.checkpoint import register_checkpoint_schemes, save_checkpoint_atomically


@pytest.fixture(autouse=True)
def schemes():
    register_checkpoint_schemes()


def test_mmengine_checkpoint_loader_reads_through_detlab(tmp_path):
    path = tmp_path / 'iter_7.pth'
    torch.save(dict(meta=dict(epoch=1, seed=np.int64(3))), path)
    assert CheckpointLoader.load_checkpoint(str(path))['meta']['epoch'] == 1


@pytest.mark.parametrize('address', ['torchvision://resnet50', 'https://x.org/m.pth',
                                     'open-mmlab://resnet50_caffe'])
def test_remote_checkpoints_are_refused_with_a_local_file_hint(address):
    model = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match='never downloads') as error:
        load_checkpoint(model, address)
    assert address in str(error.value) and 'local path' in str(error.value)


def test_remote_address_loads_the_torch_hub_cached_file(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    source = torch.nn.Linear(2, 2)
    cached = tmp_path / 'hub' / 'checkpoints' / 'm.pth'
    cached.parent.mkdir(parents=True)
    torch.save({'state_dict': source.state_dict()}, cached)
    model = torch.nn.Linear(2, 2)
    load_checkpoint(model, 'https://x.org/models/m.pth?raw=1')
    assert torch.equal(model.weight, source.weight) and torch.equal(model.bias, source.bias)


def test_checkpoints_are_written_atomically(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint_atomically({'state_dict': {'w': torch.zeros(1)}}, str(path))
    assert torch.load(path, weights_only=True)['state_dict']['w'].item() == 0
    with pytest.raises(Exception):
        save_checkpoint_atomically({'bad': lambda: None}, str(path))  # cannot be pickled
    assert torch.load(path, weights_only=True)['state_dict']['w'].item() == 0  # old file intact
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']  # no temp file left behind


def test_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / 'iter_2.pth'
    save_checkpoint_atomically({'state_dict': {'w': torch.zeros(1)}}, str(path))

    def disk_full(fileno):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError, match='No space left to save checkpoint') as error:
        save_checkpoint_atomically({'state_dict': {'w': torch.ones(1)}}, str(path))
    assert error.value.errno == errno.ENOSPC and 'intact' in str(error.value)
    assert str(path) in str(error.value)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)['state_dict']['w'].item() == 0
    assert sorted(os.listdir(tmp_path)) == ['iter_2.pth']
