"""DetRunner: mmengine left as it is, atomic checkpoints on every path, the
weights mmengine's own Runner gives, detlab's hooks."""
import itertools
import logging
import os
import subprocess
import sys

import pytest
import torch
from mmengine.runner import Runner

from detlab.engine import DetCheckpointHook
from detlab.engine import checkpoint as engine_checkpoint
from detlab.engine.runner import DetRunner
from detlab.engine.runner.checkpoint_checks import (checkpoint_from_last_checkpoint,
                                                    saved_checkpoints)
from detlab.utils.checkpoint import load_checkpoint_file
from helpers import REPO_ROOT, tool_device
from toy_model import TinyModel

_RUN_NUMBER = itertools.count()

#: Imports detlab the ways a user does and checks that every mmengine object
#: that DetRunner and detlab's hooks override in subclasses is still mmengine's own.
UNTOUCHED_SCRIPT = '''
import mmengine.hooks, mmengine.registry, mmengine.runner
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.runner import Runner, checkpoint

watched = {
    'Runner.scale_lr': (Runner, 'scale_lr'), 'Runner.wrap_model': (Runner, 'wrap_model'),
    'Runner._maybe_compile': (Runner, '_maybe_compile'),
    'Runner.save_checkpoint': (Runner, 'save_checkpoint'),
    'Runner.load_checkpoint': (Runner, 'load_checkpoint'),
    'LoggerHook.after_val_epoch': (LoggerHook, 'after_val_epoch'),
    'CheckpointHook._publish_model': (CheckpointHook, '_publish_model'),
    'CheckpointHook._save_checkpoint_with_step': (CheckpointHook, '_save_checkpoint_with_step'),
    'mmengine.runner.save_checkpoint': (mmengine.runner, 'save_checkpoint'),
    'mmengine.runner.runner.save_checkpoint': (mmengine.runner.runner, 'save_checkpoint'),
    'mmengine.runner.checkpoint.save_checkpoint': (checkpoint, 'save_checkpoint'),
}
before = {name: getattr(owner, attr) for name, (owner, attr) in watched.items()}
roots = [value for value in vars(mmengine.registry).values()
         if isinstance(value, mmengine.registry.Registry)]
build_funcs = {root.name: root.build_func for root in roots}

import detlab
import detlab.models, detlab.engine, detlab.apis
from detlab.utils import register_all_modules
register_all_modules()

changed = [name for name, (owner, attr) in watched.items()
           if getattr(owner, attr) is not before[name]]
changed += [name + '.__module__' for name, (owner, attr) in watched.items()
            if not getattr(owner, attr).__module__.startswith('mmengine')]
changed += [f'{root.name} registry build_func' for root in roots
            if root.build_func is not build_funcs[root.name]]
print('CHANGED', changed)
'''


@pytest.mark.slow
def test_importing_detlab_leaves_mmengine_as_it_is():
    result = subprocess.run([sys.executable, '-c', UNTOUCHED_SCRIPT], capture_output=True,
                            text=True, timeout=300, cwd=REPO_ROOT,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'CHANGED []' in result.stdout, result.stdout


def toy_run(work_dir, runner_class=DetRunner, max_iters: int = 2, max_keep_ckpts: int = -1,
            **kwargs) -> Runner:
    """A seeded 2-iteration run of the tiny linear model, checkpoints every iteration."""
    hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1,
                                 max_keep_ckpts=max_keep_ckpts,
                                 published_keys=['meta', 'state_dict']))
    data = [dict(inputs=torch.tensor([float(i), 1.0])) for i in range(8)]
    return runner_class(
        model=TinyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=data, batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        default_hooks=hooks, randomness=dict(seed=0), default_scope='detlab',
        log_level=logging.WARNING,
        experiment_name=f'toy-{work_dir.name}-{next(_RUN_NUMBER)}', **kwargs)


def test_every_checkpoint_file_is_written_atomically(tmp_path, monkeypatch):
    written = []
    write = engine_checkpoint.write_atomically

    def recording_write(data, filename):
        written.append(os.path.basename(filename))
        write(data, filename)

    monkeypatch.setattr(engine_checkpoint, 'write_atomically', recording_write)
    runner = toy_run(tmp_path / 'work')
    runner.train()
    published = [name for name in os.listdir(tmp_path / 'work') if name.startswith('iter_2-')]
    assert len(published) == 1  # mmengine's name: <checkpoint>-<sha256[:8]>.pth
    assert set(written) == {'iter_1.pth', 'iter_2.pth', published[0], 'last_checkpoint'}
    assert (tmp_path / 'work' / 'last_checkpoint').read_text() == str(
        tmp_path / 'work' / 'iter_2.pth')
    assert set(load_checkpoint_file(str(tmp_path / 'work' / published[0]))) == {
        'meta', 'state_dict'}
    assert not [name for name in os.listdir(tmp_path / 'work') if name.startswith('.tmp_')]


class Interrupted(BaseException):
    """Stands in for the signal or crash that stops a save half-way."""


def test_interrupted_save_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    runner = toy_run(tmp_path / 'work')
    runner.train()
    path = tmp_path / 'work' / 'iter_2.pth'
    before = load_checkpoint_file(str(path))['state_dict']
    with torch.no_grad():
        runner.model.linear.weight.add_(1.0)

    def interrupted_fsync(fileno):  # the bytes are in the temporary file, not yet renamed
        raise Interrupted()

    monkeypatch.setattr(os, 'fsync', interrupted_fsync)
    with pytest.raises(Interrupted):
        runner.save_checkpoint(str(tmp_path / 'work'), 'iter_2.pth', by_epoch=False)
    monkeypatch.undo()
    after = load_checkpoint_file(str(path))['state_dict']
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not [name for name in os.listdir(tmp_path / 'work') if name.startswith('.tmp_')]


def test_interrupted_pointer_write_leaves_the_previous_pointer_intact(tmp_path, monkeypatch):
    work = tmp_path / 'work'
    runner = toy_run(work)
    runner.train()
    pointer = work / 'last_checkpoint'
    previous, new = str(work / 'iter_2.pth'), str(work / 'iter_3.pth')
    assert pointer.read_text() == previous
    hook = next(hook for hook in runner.hooks if isinstance(hook, DetCheckpointHook))
    replace = os.replace

    def interrupted_replace(source, target):
        if os.path.basename(target) == 'last_checkpoint':
            # The new pointer is whole in a temporary file; the old one is untouched.
            with open(source) as temporary:
                assert temporary.read() == new
            assert pointer.read_text() == previous
            raise Interrupted()
        replace(source, target)

    monkeypatch.setattr(os, 'replace', interrupted_replace)
    with pytest.raises(Interrupted):
        hook._save_checkpoint_with_step(runner, 3, dict(epoch=0, iter=3))
    monkeypatch.undo()
    assert os.path.isfile(new)  # the checkpoint was saved before the pointer
    assert pointer.read_text() == previous
    assert checkpoint_from_last_checkpoint(str(work)) == previous
    assert not [name for name in os.listdir(work) if name.startswith('.tmp_')]


def test_det_checkpoint_hook_keeps_and_points_at_the_checkpoints_mmengine_does(tmp_path):
    """max_keep_ckpts drops the same files, and last_checkpoint names the same one."""
    kept = {}
    for name, runner_class in (('mmengine', Runner), ('detlab', DetRunner)):
        work = tmp_path / name
        toy_run(work, runner_class=runner_class, max_iters=4, max_keep_ckpts=2).train()
        kept[name] = ([os.path.basename(path) for path in saved_checkpoints(str(work))],
                      os.path.relpath((work / 'last_checkpoint').read_text(), work))
    assert kept['detlab'] == kept['mmengine'] == (['iter_3.pth', 'iter_4.pth'], 'iter_4.pth')


def test_det_runner_trains_the_weights_mmengine_runner_trains(tmp_path):
    """Same seed, data and schedule: DetRunner's weights and checkpoints are mmengine's (bit
    for bit on the CPU; on CUDA DetRunner steps a fused SGD, which may round otherwise)."""
    plain = toy_run(tmp_path / 'mmengine', runner_class=Runner, max_iters=3)
    plain.train()
    det = toy_run(tmp_path / 'detlab', max_iters=3)
    det.train()
    tolerance = dict(rtol=0, atol=0) if tool_device() == 'cpu' else dict(rtol=1e-6, atol=1e-7)
    saved = load_checkpoint_file(str(tmp_path / 'detlab' / 'iter_3.pth'))
    for key, value in plain.model.state_dict().items():
        torch.testing.assert_close(det.model.state_dict()[key], value, msg=key, **tolerance)
        torch.testing.assert_close(saved['state_dict'][key], value.cpu(), msg=key, **tolerance)
    assert saved['meta']['iter'] == 3


def test_det_runner_adds_detlab_hooks_and_upgrades_mmengine_ones(tmp_path):
    names = [type(hook).__name__ for hook in toy_run(tmp_path / 'work').hooks]
    for name in ('NumClassCheckHook', 'NonFiniteLossHook', 'BadSampleHook',
                 'DetCheckpointHook', 'DetLoggerHook'):
        assert names.count(name) == 1, names
    assert 'CheckpointHook' not in names and 'LoggerHook' not in names


def test_runs_started_in_the_same_second_get_their_own_log_folder(tmp_path, monkeypatch):
    monkeypatch.setattr('time.strftime', lambda *args: '20260101_000000')
    first, second = toy_run(tmp_path / 'work'), toy_run(tmp_path / 'work')
    assert first.log_dir != second.log_dir
    assert os.path.basename(second.log_dir) == '20260101_000000_2'


def test_a_second_training_run_in_the_work_dir_is_refused(tmp_path):
    holder = toy_run(tmp_path / 'work')
    holder._lock_work_dir()
    try:
        with pytest.raises(RuntimeError, match='Another training run') as error:
            toy_run(tmp_path / 'work').train()
        message = str(error.value)
        assert str(tmp_path / 'work') in message and f'pid {os.getpid()}' in message
        assert '--work-dir' in message
    finally:
        holder._work_dir_lock.release()
    toy_run(tmp_path / 'work').train()  # free again once the first run is done


def test_from_cfg_names_a_misspelled_type_before_building(tmp_path):
    """A script that builds the runner itself (no tools/train.py) hears of a misspelled
    optimizer at once, with the config key and the closest names."""
    from mmengine.config import Config
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/quickstart/retinanet_r18_fpn_shapes.py'))
    cfg.optim_wrapper.optimizer.type = 'SGDD'
    cfg.work_dir = str(tmp_path)
    with pytest.raises(KeyError, match=r"optim_wrapper.optimizer.type: 'SGDD'.*Closest known "
                       r'names: SGD'):
        DetRunner.from_cfg(cfg)
    assert not list(tmp_path.iterdir())  # nothing was built or written
