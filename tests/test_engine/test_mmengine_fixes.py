import errno
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.optim import OneCycleParamScheduler
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from helpers import REPO_ROOT, free_port
from detlab.engine.mmengine_fixes import (ddp_wrapper_cfg, distributed_process,
                                          load_checkpoint_file, save_checkpoint_atomically)


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
    # mmengine's own entry point goes through detlab's loader.
    assert CheckpointLoader.load_checkpoint(str(path))['meta']['epoch'] == 1


class NotAllowed:
    def __reduce__(self):
        return (os.getcwd, ())


def test_objects_outside_the_allow_list_are_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': NotAllowed()}, path)
    with pytest.raises(RuntimeError, match='weights_only=True'):
        load_checkpoint_file(str(path))


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


def test_missing_checkpoint_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(str(tmp_path / 'nope.pth'))


def test_checkpoints_are_written_atomically(tmp_path):
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint_atomically({'state_dict': {'w': torch.zeros(1)}}, str(path))
    assert torch.load(path, weights_only=True)['state_dict']['w'].item() == 0
    with pytest.raises(Exception):
        save_checkpoint_atomically({'bad': lambda: None}, str(path))  # cannot be pickled
    assert torch.load(path, weights_only=True)['state_dict']['w'].item() == 0  # old file intact
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pth']  # no temp file left behind


def test_cpu_ddp_wrapper_has_no_device_ids():
    cfg = ddp_wrapper_cfg()
    assert cfg['type'] == 'MMDistributedDataParallel' and cfg['device_ids'] is None


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


GLOO_EXIT_SCRIPT = '''
import atexit, os, sys
import torch
from detlab.engine.mmengine_fixes import distributed_process

marker = sys.argv[1]
with distributed_process():
    torch.distributed.init_process_group('gloo')
    rank = torch.distributed.get_rank()
    atexit.register(lambda: open(f'{marker}.{rank}', 'w').write('exit handlers ran'))
    # DDP keeps the group's worker threads alive past destroy_process_group;
    # the all_gather leaves them a Python-owned tensor to release.
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(2, 2))
    gathered = [torch.zeros(2) for _ in range(2)]
    torch.distributed.all_gather(gathered, torch.full((2,), float(rank)))
    print(f'rank {rank} gathered {sum(t.sum().item() for t in gathered)}', end='')
print('never reached after a distributed run')
'''


@pytest.mark.slow
def test_gloo_run_leaves_after_its_exit_handlers(tmp_path):
    script = tmp_path / 'gloo_exit.py'
    script.write_text(GLOO_EXIT_SCRIPT)
    marker = tmp_path / 'marker'
    result = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
         f'--master_port={free_port()}', str(script), str(marker)],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert 'terminate called' not in output
    # output without a newline was flushed, and finalization never ran
    assert output.count('gathered 2.0') == 2 and 'never reached' not in output
    assert (tmp_path / 'marker.0').read_text() == 'exit handlers ran'
    assert (tmp_path / 'marker.1').read_text() == 'exit handlers ran'


def test_failing_body_raises_and_single_process_returns():
    with pytest.raises(ValueError, match='boom'):
        with distributed_process():
            raise ValueError('boom')
    with distributed_process():
        pass  # no process group: nothing to close, and the caller goes on
    assert not torch.distributed.is_initialized()


class _CountingMetric(BaseMetric):
    """Reports how many samples it saw, as ``toy/count``."""
    default_prefix = 'toy'

    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(count=float(sum(results)))


@pytest.mark.parametrize('by_epoch, expected_steps', [(False, [2, 4]), (True, [1, 2])])
def test_validation_metrics_are_logged_at_their_iteration_or_epoch(tmp_path, by_epoch,
                                                                   expected_steps):
    import json

    import detlab.engine  # noqa: F401  (installs the fixes)
    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner

    from toy_model import TinyModel
    data = [dict(inputs=torch.ones(2))] * 4
    loader = dict(dataset=data, batch_size=2, sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='pseudo_collate'))
    train_cfg = (dict(by_epoch=True, max_epochs=2, val_interval=1) if by_epoch else
                 dict(by_epoch=False, max_iters=4, val_interval=2))
    runner = Runner(
        model=TinyModel(), work_dir=str(tmp_path), train_dataloader=loader,
        val_dataloader=loader, val_evaluator=Evaluator(_CountingMetric()), val_cfg=dict(),
        train_cfg=train_cfg, optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=None), log_processor=dict(by_epoch=by_epoch),
        default_scope='detlab', experiment_name=f'val-steps-{tmp_path.name}')
    runner.train()
    scalars = tmp_path / runner.timestamp / 'vis_data' / 'scalars.json'
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert [r['step'] for r in records if 'toy/count' in r] == expected_steps
