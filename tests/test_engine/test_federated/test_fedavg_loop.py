"""FedAvgTrainLoop in one process with a tiny linear model: exactness against
ordinary training, FedProx, the NaN policy, per-round checkpoints and resume."""
import copy
import json

import pytest
import torch
from mmengine.evaluator import BaseMetric, Evaluator
from detlab.engine.runner import DetRunner

from detlab.engine.federated import WeightAverager
from detlab.utils.checkpoint import load_checkpoint_file
from toy_model import TinyModel

NUM_SAMPLES = 8
LR = 0.1


class LabelledPoints:
    """``NUM_SAMPLES`` points for TinyModel, with a class label per point for the
    Dirichlet split (``get_cat_ids``) and optional NaN inputs."""

    def __init__(self, num=NUM_SAMPLES, nan_at=(), offset=0.0) -> None:
        generator = torch.Generator().manual_seed(0)
        self.points = torch.randn(num, 2, generator=generator) + offset
        self.points[list(nan_at)] = float('nan')
        self.metainfo = dict(classes=('a', 'b', 'c'))

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=self.points[index])

    def get_cat_ids(self, index: int) -> list:
        return [index % 3]


def loader(dataset, batch_size=NUM_SAMPLES) -> dict:
    return dict(dataset=dataset, batch_size=batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate'))


def make_runner(tmp_path, train_cfg, dataset=None, batch_size=NUM_SAMPLES, momentum=0.0,
                **extra) -> DetRunner:
    torch.manual_seed(0)
    kwargs = dict(
        model=TinyModel(), work_dir=str(tmp_path), train_cfg=train_cfg,
        train_dataloader=loader(dataset or LabelledPoints(), batch_size),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=LR, momentum=momentum)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1)),
        log_processor=dict(by_epoch=False), default_scope='detlab', randomness=dict(seed=0),
        experiment_name=f'fedavg-{tmp_path.parent.name}-{tmp_path.name}')
    return DetRunner(**{**kwargs, **extra})


def fed_cfg(rounds=3, local_iters=1, num_clients=1, **extra) -> dict:
    return dict(type='FedAvgTrainLoop', rounds=rounds, local_iters=local_iters,
                partition=dict(type='iid', num_clients=num_clients), **extra)


def weights(runner) -> dict:
    return {key: value.clone() for key, value in runner.model.state_dict().items()}


def ordinary(tmp_path, iters, momentum=0.0) -> dict:
    runner = make_runner(tmp_path / 'ordinary', dict(by_epoch=False, max_iters=iters),
                         momentum=momentum)
    runner.train()
    return weights(runner)


@pytest.mark.parametrize('state,momentum', [('fresh', 0.0), ('keep', 0.9)])
def test_one_client_with_all_data_is_ordinary_training(tmp_path, state, momentum):
    """One client, one local step a round: the rounds are the ordinary iterations
    (with momentum when the client keeps its optimizer state)."""
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=4, client_optim_state=state),
                         momentum=momentum)
    start = weights(runner)
    runner.train()
    expected = ordinary(tmp_path, 4, momentum)
    torch.testing.assert_close(weights(runner), expected)
    assert not torch.equal(expected['linear.bias'], start['linear.bias'])


def test_fresh_state_resets_momentum(tmp_path):
    """With 'fresh' each round starts without momentum, so it differs from ordinary
    momentum SGD after the first step."""
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=3), momentum=0.9)
    runner.train()
    expected = ordinary(tmp_path, 3, momentum=0.9)
    assert not torch.allclose(weights(runner)['linear.bias'], expected['linear.bias'])


def test_two_equal_iid_clients_take_one_step_on_the_averaged_gradient(tmp_path):
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=1, num_clients=2),
                         batch_size=NUM_SAMPLES // 2)
    start = weights(runner)
    runner.train()
    # Gradient of mean(w.x + b) over all 8 points: (mean x, 1).
    points = LabelledPoints().points.to(start['linear.weight'].device)  # the runner's device
    expected_weight = start['linear.weight'] - LR * points.mean(0, keepdim=True)
    torch.testing.assert_close(runner.model.linear.weight.detach(), expected_weight)
    torch.testing.assert_close(runner.model.linear.bias.detach(), start['linear.bias'] - LR)
    torch.testing.assert_close(weights(runner), ordinary(tmp_path, 1))


def test_unequal_clients_are_weighted_by_sample_count(tmp_path):
    """Dirichlet shares differ in size; the average weights each by its count."""
    cfg = fed_cfg(rounds=1)
    cfg['partition'] = dict(type='dirichlet', num_clients=2, alpha=0.3, seed=3)
    # Shares of 2 and 6 points; a batch of 6 is a whole number of passes over each.
    runner = make_runner(tmp_path / 'fed', cfg, batch_size=6)
    start = weights(runner)
    loop = runner.build_train_loop(runner._train_loop)
    assert [loop.clients[index].num_samples for index in (0, 1)] == [2, 6]
    runner._train_loop = loop
    runner.train()
    # Each client takes one full-batch step on its own points; the average of
    # (mean of its points) weighted by its count is the mean over all points.
    points = LabelledPoints().points.to(start['linear.weight'].device)  # the runner's device
    expected = start['linear.weight'] - LR * points.mean(0, keepdim=True)
    torch.testing.assert_close(runner.model.linear.weight.detach(), expected)


def test_fedprox_adds_the_proximal_gradient(tmp_path):
    """Two local steps with constant gradient g: w2 = w0 - lr g - lr g (1 - mu lr)."""
    mu = 0.5
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=1, local_iters=2, mu=mu))
    start = weights(runner)
    runner.train()
    expected_bias = start['linear.bias'] - LR - LR * (1 - mu * LR)
    torch.testing.assert_close(runner.model.linear.bias.detach(), expected_bias)


def test_client_with_nan_loss_is_dropped(tmp_path, monkeypatch):
    clean = LabelledPoints(offset=1.0)
    cfg = fed_cfg(rounds=1)
    cfg['partition'] = dict(type='by_dataset', datasets=[LabelledPoints(nan_at=[3]), clean])
    runner = make_runner(tmp_path / 'fed', cfg)
    warned = []
    monkeypatch.setattr(runner.logger, 'warning', warned.append)
    start = weights(runner)
    runner.train()
    points = clean.points.to(start['linear.weight'].device)  # the runner's device
    expected = start['linear.weight'] - LR * points.mean(0, keepdim=True)
    torch.testing.assert_close(runner.model.linear.weight.detach(), expected)
    log = '\n'.join(warned)
    assert ('round 1: dropped from the average (loss not finite): client 0: loss not finite '
            'at local iteration 1') in log


def test_nan_stop_policy_raises_and_writes_no_checkpoint(tmp_path):
    dataset = LabelledPoints(nan_at=[0])
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=2, nonfinite='stop'), dataset=dataset)
    with pytest.raises(FloatingPointError, match=r"round 1 .*nonfinite='stop'.*client 0"):
        runner.train()
    assert not list((tmp_path / 'fed').glob('iter_*.pth'))


def test_all_clients_failing_stops_even_with_drop(tmp_path):
    runner = make_runner(tmp_path / 'fed', fed_cfg(rounds=2), dataset=LabelledPoints(nan_at=[0]))
    with pytest.raises(FloatingPointError, match='every client of the round failed'):
        runner.train()


@pytest.mark.parametrize('state', ['fresh', 'keep'])
def test_resume_from_a_round_checkpoint_equals_an_uninterrupted_run(tmp_path, state):
    cfg = fed_cfg(rounds=4, local_iters=2, num_clients=4, clients_per_round=2,
                  client_optim_state=state)
    cfg['partition'] = dict(type='dirichlet', num_clients=4, alpha=0.5)
    straight = make_runner(tmp_path / 'straight', copy.deepcopy(cfg), batch_size=2, momentum=0.9)
    straight.train()
    assert sorted(p.name for p in (tmp_path / 'straight').glob('iter_*.pth')) == [
        f'iter_{r}.pth' for r in range(1, 5)]
    checkpoint = load_checkpoint_file(str(tmp_path / 'straight' / 'iter_2.pth'))
    assert ('fedavg' in checkpoint) == (state == 'keep')
    resumed = make_runner(tmp_path / 'resumed', copy.deepcopy(cfg), batch_size=2, momentum=0.9,
                          resume=True, load_from=str(tmp_path / 'straight' / 'iter_2.pth'))
    resumed.train()
    assert resumed.iter == 4
    for key, value in weights(straight).items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_client_selection_is_seeded_and_sized(tmp_path):
    runner = make_runner(tmp_path / 'fed', fed_cfg(num_clients=4, clients_per_round=0.5),
                         batch_size=2)
    loop = runner.build_train_loop(runner._train_loop)
    picks = [loop.select_clients(r) for r in range(6)]
    assert all(len(p) == 2 and p == sorted(set(p)) for p in picks)
    assert len({tuple(p) for p in picks}) > 1
    assert picks == [loop.select_clients(r) for r in range(6)]


@pytest.mark.parametrize('key,value,message', [
    ('rounds', 0, 'rounds'), ('client_optim_state', 'stale', 'client_optim_state'),
    ('nonfinite', 'skip', 'nonfinite'), ('mu', -1, 'mu'), ('clients_per_round', 5,
                                                           r'1\.\.2'),
    ('clients_per_round', 1.5, r'\(0, 1\]')])
def test_bad_keys_are_named(tmp_path, key, value, message):
    cfg = fed_cfg(num_clients=2)
    cfg[key] = value
    runner = make_runner(tmp_path / 'fed', cfg, batch_size=2)
    with pytest.raises(ValueError, match=message):
        runner.build_train_loop(runner._train_loop)


def test_bad_partition_is_named(tmp_path):
    cfg = fed_cfg()
    cfg['partition'] = dict(type='iid', num_clients=2, alpha=1)
    runner = make_runner(tmp_path / 'fed', cfg, batch_size=2)
    with pytest.raises(ValueError, match=r"unknown keys \['alpha'\]"):
        runner.build_train_loop(runner._train_loop)


def test_averager_handles_batchnorm_buffers():
    """Running statistics are averaged like weights (by count); num_batches_tracked
    (an integer counter) takes the clients' largest value."""
    norm = torch.nn.BatchNorm1d(2)
    start = {key: value.clone() for key, value in norm.state_dict().items()}
    averager = WeightAverager(start)
    first, second = copy.deepcopy(start), copy.deepcopy(start)
    first['running_mean'] = torch.tensor([1.0, 2.0])
    second['running_mean'] = torch.tensor([4.0, -1.0])
    first['num_batches_tracked'] = torch.tensor(5)
    second['num_batches_tracked'] = torch.tensor(5)
    averager.add(first, 1)
    averager.add(second, 2)
    averaged = averager.reduce()
    torch.testing.assert_close(averaged['running_mean'], torch.tensor([3.0, 0.0]))
    assert averaged['num_batches_tracked'].dtype == torch.int64
    assert int(averaged['num_batches_tracked']) == 5
    assert WeightAverager(start).reduce() is None


class _BiasMetric(BaseMetric):
    """The model's bias after the round, as a metric that grows as SGD lowers it."""

    default_prefix = 'toy'

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def process(self, data_batch, data_samples) -> None:
        self.results.append(-float(self.model.linear.bias))

    def compute_metrics(self, results) -> dict:
        return dict(bias=results[0])


def test_validation_every_val_interval_rounds_logged_by_round_with_save_best(tmp_path):
    runner = make_runner(
        tmp_path / 'fed', fed_cfg(rounds=4, num_clients=2, val_interval=2), batch_size=4,
        val_dataloader=loader(LabelledPoints(), 8), val_cfg=dict(),
        val_evaluator=Evaluator(_BiasMetric(None)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1,
                                           save_best='toy/bias', rule='greater'),
                           logger=dict(type='LoggerHook', interval=1)))
    runner.val_evaluator.metrics[0].model = runner.model
    runner.train()
    scalars = tmp_path / 'fed' / runner.timestamp / 'vis_data' / 'scalars.json'
    records = [json.loads(line) for line in scalars.read_text().splitlines()]
    assert [record['step'] for record in records if 'toy/bias' in record] == [2, 4]
    assert [record['step'] for record in records if 'loss' in record] == [1, 2, 3, 4]
    assert [path.name for path in (tmp_path / 'fed').glob('best_*.pth')] == [
        'best_toy_bias_iter_4.pth']


class _CountedPoints(LabelledPoints):
    """LabelledPoints built from a config, recording which sizes were built."""

    built = []

    def __init__(self, num: int) -> None:
        super().__init__(num=num)
        self.built.append(num)


def test_by_dataset_builds_only_this_process_clients(monkeypatch):
    """Rank 1 of 2 with 4 clients owns clients 2 and 3 and builds nothing else;
    each client's config is merged onto train_dataloader.dataset."""
    from detlab.engine.federated import clients as clients_module
    from detlab.registry import DATASETS
    DATASETS.register_module(name='_FedCountedPoints', module=_CountedPoints, force=True)
    monkeypatch.setattr(clients_module, 'get_rank', lambda: 1)
    monkeypatch.setattr(clients_module, 'get_world_size', lambda: 2)
    _CountedPoints.built.clear()
    partition = dict(type='by_dataset', datasets=[dict(num=index + 2) for index in range(4)])
    datasets = clients_module.client_datasets(
        partition, dict(type='_FedCountedPoints', num=100), seed=0)
    assert sorted(datasets) == [2, 3]
    assert [len(datasets[index]) for index in (2, 3)] == [4, 5]
    assert _CountedPoints.built == [4, 5]
    assert [clients_module.owner_rank(k, 4, 2) for k in range(4)] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match='3 federated clients cannot fill 4 processes'):
        monkeypatch.setattr(clients_module, 'get_world_size', lambda: 4)
        clients_module.client_datasets(dict(type='iid', num_clients=3), [1, 2, 3], seed=0)
