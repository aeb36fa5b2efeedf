"""Every mmengine parameter scheduler, optimizer and optimizer wrapper survives save + resume.

Checkpoints are read with ``weights_only=True`` and detlab's allow-list, so each
state an mmengine run can write must load again, through the same path
``tools/train.py --resume`` takes (``Runner.resume`` -> ``CheckpointLoader``).
"""
import functools
import logging

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.optim import AmpOptimWrapper, OptimWrapper, OptimWrapperDict
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS, PARAM_SCHEDULERS
from detlab.engine.runner import DetRunner

from detlab.utils.checkpoint import load_checkpoint_file

NUM_SAMPLES = 8
SAVE_AT = 3


class ToyModel(BaseModel):
    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, targets=None, mode='tensor'):
        outputs = self.linear(torch.stack(inputs))
        if mode == 'loss':
            return dict(loss=((outputs - torch.stack(targets)) ** 2).mean())
        return outputs


class ToyDataset(torch.utils.data.Dataset):
    metainfo = dict(classes=('thing',))

    def __len__(self) -> int:
        return NUM_SAMPLES

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(index)
        return dict(inputs=torch.randn(2, generator=generator),
                    targets=torch.randn(1, generator=generator))


#: One of each scheduler kind; the class is ``<kind>LR``, ``<kind>Momentum`` or
#: ``<kind>ParamScheduler``.
SCHEDULER_KINDS = [
    dict(kind='Constant', factor=0.5, begin=0, end=2),
    dict(kind='Linear', start_factor=0.5, begin=0, end=4),
    dict(kind='Exponential', gamma=0.99),
    dict(kind='MultiStep', milestones=[2, 5], gamma=0.5),
    dict(kind='Step', step_size=2, gamma=0.9),
    dict(kind='Poly', eta_min=0.0, power=0.9, end=10),
    dict(kind='CosineAnnealing', T_max=10, eta_min=0.0),
    dict(kind='CosineRestart', periods=[3, 7], restart_weights=[1, 0.5], eta_min=0.0),
]


def every_kind(class_suffix: str, **extra) -> list:
    return [dict(type=cfg['kind'] + class_suffix, **extra,
                 **{key: value for key, value in cfg.items() if key != 'kind'})
            for cfg in SCHEDULER_KINDS]


#: Every scheduler class mmengine registers, in groups that can run together.
SCHEDULER_GROUPS = {
    'lr': every_kind('LR'),
    'momentum': every_kind('Momentum'),
    'param': every_kind('ParamScheduler', param_name='weight_decay'),
    # mmengine steps these after validation epochs only (by_epoch=True).
    'plateau': [dict(type=f'ReduceOnPlateau{name}', monitor='loss', patience=1, by_epoch=True,
                     **extra)
                for name, extra in (('LR', {}), ('Momentum', {}),
                                    ('ParamScheduler', dict(param_name='weight_decay')))],
    'one_cycle_cos': [dict(type='OneCycleLR', eta_max=0.1, total_steps=10)],
    'one_cycle_linear': [dict(type='OneCycleLR', eta_max=0.1, total_steps=10,
                              anneal_strategy='linear', three_phase=True)],
    'one_cycle_param': [dict(type='OneCycleParamScheduler', param_name='lr', eta_max=0.1,
                             total_steps=10)],
}
for group in SCHEDULER_GROUPS.values():
    for cfg in group:
        cfg.setdefault('by_epoch', False)


def build_runner(work_dir, max_iters: int, param_scheduler, optim_wrapper: dict,
                 resume: bool = False) -> DetRunner:
    return DetRunner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyDataset(), batch_size=2, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=True),
                              collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=optim_wrapper, param_scheduler=param_scheduler,
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False,
                                           interval=SAVE_AT),
                           logger=dict(type='LoggerHook', interval=100)),
        randomness=dict(seed=0), resume=resume, default_scope='detlab', log_level=logging.WARNING,
        experiment_name=f'toy-{work_dir.name}-{max_iters}-{resume}')


def assert_same_state(actual, expected) -> None:
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            assert_same_state(actual[key], expected[key])
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected)
        for one, other in zip(actual, expected):
            assert_same_state(one, other)
    elif isinstance(expected, torch.Tensor):
        # A resumed state may sit on another device than the saved one (map_location).
        assert torch.equal(actual.cpu(), expected.cpu())
    else:
        assert actual == expected or (actual != actual and expected != expected)  # nan


def saved_and_resumed(tmp_path, param_scheduler, optim_wrapper) -> tuple:
    saved = build_runner(tmp_path, SAVE_AT, param_scheduler, optim_wrapper)
    saved.train()
    # A resumed run with nothing left to do: the states it holds are the loaded ones.
    resumed = build_runner(tmp_path, SAVE_AT, param_scheduler, optim_wrapper, resume=True)
    resumed.train()
    assert resumed.iter == SAVE_AT
    return saved, resumed


def sgd_wrapper() -> dict:
    return dict(type='OptimWrapper',
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))


@pytest.mark.parametrize('group', sorted(SCHEDULER_GROUPS))
def test_param_schedulers_resume(tmp_path, group):
    saved, resumed = saved_and_resumed(tmp_path, SCHEDULER_GROUPS[group], sgd_wrapper())
    assert len(resumed.param_schedulers) == len(SCHEDULER_GROUPS[group])
    for before, after in zip(saved.param_schedulers, resumed.param_schedulers):
        assert_same_state(after.state_dict(), before.state_dict())
    assert_same_state(resumed.optim_wrapper.state_dict(), saved.optim_wrapper.state_dict())


def test_every_registered_scheduler_is_covered():
    covered = {cfg['type'] for group in SCHEDULER_GROUPS.values() for cfg in group}
    public = {name for name in PARAM_SCHEDULERS.module_dict if not name.startswith('_')}
    assert public == covered


@pytest.fixture
def cpu_amp(monkeypatch):
    """AmpOptimWrapper asks for CUDA; on a CPU-only machine give it torch's CPU loss scaler
    (with a GPU the Runner trains there and the real CUDA scaler is used)."""
    if torch.cuda.is_available():
        return
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    monkeypatch.setattr(amp_optimizer_wrapper, 'GradScaler',
                        functools.partial(torch.amp.GradScaler, 'cpu'))


def test_amp_optim_wrapper_and_loss_scaler_resume(tmp_path, cpu_amp):
    optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16',
                         loss_scale=dict(init_scale=1024.0, growth_interval=2),
                         optimizer=dict(type='AdamW', lr=0.01))
    saved, resumed = saved_and_resumed(tmp_path, SCHEDULER_GROUPS['one_cycle_cos'],
                                       optim_wrapper)
    state = resumed.optim_wrapper.loss_scaler.state_dict()
    assert state['_growth_tracker'] == SAVE_AT % 2 and state['scale'] == 2048.0
    assert_same_state(state, saved.optim_wrapper.loss_scaler.state_dict())
    assert_same_state(resumed.optim_wrapper.state_dict(), saved.optim_wrapper.state_dict())


def test_bf16_amp_without_loss_scaler_trains_and_resumes(tmp_path):
    """On the CPU and, where there is one, on the GPU the Runner trains on."""
    optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=None,
                         optimizer=dict(type='SGD', lr=0.1, momentum=0.9))
    saved, resumed = saved_and_resumed(tmp_path, SCHEDULER_GROUPS['lr'], optim_wrapper)
    assert type(resumed.optim_wrapper).__module__.startswith('detlab.')
    assert resumed.optim_wrapper.loss_scaler is None
    assert 'loss_scaler' not in resumed.optim_wrapper.state_dict()
    assert_same_state(resumed.optim_wrapper.state_dict(), saved.optim_wrapper.state_dict())
    device = saved.model.linear.weight.device
    with saved.optim_wrapper.optim_context(saved.model):
        assert torch.is_autocast_enabled(device.type)
        assert torch.get_autocast_dtype(device.type) == torch.bfloat16
        assert saved.model.linear(torch.ones(1, 2, device=device)).dtype == torch.bfloat16


def test_fp16_without_loss_scaling_is_refused():
    with pytest.raises(ValueError, match='bfloat16'):
        OPTIM_WRAPPERS.build(dict(type='AmpOptimWrapper', dtype='float16', loss_scale=None,
                                  optimizer=torch.optim.SGD([torch.nn.Parameter(torch.ones(1))],
                                                            lr=0.1)))


def test_optim_wrapper_dict_state_loads(tmp_path, cpu_amp):
    # Where there is a GPU the real CUDA loss scaler is used, on weights and inputs there.
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    first, second = torch.nn.Linear(2, 2).to(device), torch.nn.Linear(2, 2).to(device)

    def wrappers() -> OptimWrapperDict:
        return OptimWrapperDict(
            plain=OptimWrapper(torch.optim.SGD(first.parameters(), lr=0.1, momentum=0.9)),
            amp=AmpOptimWrapper(optimizer=torch.optim.Adam(second.parameters(), lr=0.1),
                                loss_scale=dict(init_scale=64.0)))
    original = wrappers()
    for name, wrapper in original.items():
        module = first if name == 'plain' else second
        wrapper.update_params(module(torch.ones(1, 2, device=device)).sum())
    path = tmp_path / 'dict.pth'
    torch.save(dict(optimizer=original.state_dict()), path)
    restored = wrappers()
    restored.load_state_dict(load_checkpoint_file(str(path))['optimizer'])
    assert_same_state(restored.state_dict(), original.state_dict())


def test_every_registered_optimizer_state_loads(tmp_path):
    needs_process_group = {'Optimizer', 'ZeroRedundancyOptimizer'}
    for name in sorted(set(OPTIMIZERS.module_dict) - needs_process_group):
        param = torch.nn.Parameter(torch.ones(3, 3))
        optimizer = OPTIMIZERS.get(name)([param], lr=0.01)
        param.grad = torch.ones(3, 3).to_sparse() if name == 'SparseAdam' else torch.ones(3, 3)
        optimizer.step((lambda: (param ** 2).sum()) if name == 'LBFGS' else None)
        path = tmp_path / f'{name}.pth'
        torch.save(dict(optimizer=optimizer.state_dict()), path)
        assert_same_state(load_checkpoint_file(str(path))['optimizer'], optimizer.state_dict())


def test_every_registered_optim_wrapper_is_covered_or_needs_its_extra():
    # Apex, DeepSpeed and ColossalAI wrappers need those packages (and CUDA);
    # their state dicts are their optimizer's, covered above.
    extras = {'ApexOptimWrapper', 'DeepSpeedOptimWrapper', 'ColossalAIOptimWrapper'}
    assert set(OPTIM_WRAPPERS.module_dict) - extras == {'OptimWrapper', 'AmpOptimWrapper'}
    import detlab.engine  # noqa: F401  (detlab's AmpOptimWrapper, tested above)
    from detlab.registry import OPTIM_WRAPPERS as DETLAB_OPTIM_WRAPPERS
    assert set(DETLAB_OPTIM_WRAPPERS.module_dict) == {'AmpOptimWrapper'}
