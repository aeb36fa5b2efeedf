"""FedAvgTrainLoop: federated averaging (McMahan et al. 2017) as an mmengine loop.

Each round the server picks clients (seeded), every picked client trains a
copy of the global model on its own images for ``local_iters`` iterations,
and the global model becomes the average of the clients' weights, weighted by
their image counts (:mod:`.aggregate`). Clients send weights, never images.

In mmengine's terms one round is one training iteration: ``runner.iter``
counts rounds, ``before/after_train_iter`` hooks run once per round (the
logged losses are the clients' averages), ``CheckpointHook(by_epoch=False,
interval=1)`` saves the global model after every round, validation runs every
``val_interval`` rounds, ``param_scheduler`` entries with ``by_epoch=False``
step once per round, and ``--resume`` continues at the next round.

The runner's optimizer holds the schedule: at the start of a client's local
training its learning rate (and momentum/betas) is copied into the local
optimizer, which trains the model; the two are built from the same
``optim_wrapper`` config (clipping and mixed precision included).
"""
import copy
import math
import random
from collections import defaultdict
from typing import Dict, List, Optional, Union

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper
from mmengine.runner.base_loop import BaseLoop

from detlab.registry import LOOPS
from .aggregate import WeightAverager
from .clients import Client, build_clients, client_datasets, log_clients

#: ``client_optim_state``: a fresh optimizer for every client every round, or
#: each client's own optimizer state kept from the last round it took part in.
OPTIM_STATES = ('fresh', 'keep')
#: ``nonfinite``: drop a client whose loss is NaN/inf from the round's average,
#: or stop training.
NONFINITE_ACTIONS = ('drop', 'stop')
#: Optimizer hyperparameters that param schedulers change and that the
#: server's optimizer hands to the local one each round.
SCHEDULED_KEYS = ('lr', 'momentum', 'betas', 'weight_decay')


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def derived_seed(*parts: int) -> int:
    """A 32-bit seed from ``parts`` (e.g. base seed, round, client)."""
    return int(np.random.SeedSequence([int(part) for part in parts]).generate_state(1)[0])


class _FedAvgStateHook(Hook):
    """Puts the loop's per-client optimizer states into checkpoints and back."""

    priority = 'VERY_LOW'

    def __init__(self, loop: 'FedAvgTrainLoop') -> None:
        self.loop = loop

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self.loop.client_optim_state == 'keep':
            checkpoint['fedavg'] = dict(client_optim_states=self.loop.client_states)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if not runner._resume:  # load_from starts new clients from the weights only
            return
        states = checkpoint.get('fedavg', {}).get('client_optim_states')
        if self.loop.client_optim_state == 'keep' and states is not None:
            self.loop.client_states = dict(states)


@LOOPS.register_module()
class FedAvgTrainLoop(BaseLoop):
    """Federated averaging over clients that never share their images.

    Args:
        runner: The runner.
        dataloader (dict): ``train_dataloader``: its dataset is split among the
            clients (``iid``/``dirichlet``), or is the base that each client's
            dataset config is merged onto (``by_dataset``); its batch size,
            workers and batch sampler are every client's.
        rounds (int): Communication rounds.
        local_iters (int): Optimizer steps a client takes per round.
        partition (dict): ``dict(type='iid', num_clients=K)``,
            ``dict(type='dirichlet', num_clients=K, alpha=0.5)`` or
            ``dict(type='by_dataset', datasets=[cfg, ...])``; optional
            ``seed`` (iid/dirichlet) and ``min_size`` (dirichlet).
        clients_per_round (int | float): How many clients train each round:
            an int in ``1..K`` or a fraction in ``(0, 1]``. Defaults to 1.0 (all).
        val_begin (int): First round that may validate. Defaults to 1.
        val_interval (int): Validate every this many rounds (and after the
            last). Defaults to 1.
        mu (float): FedProx's proximal weight: each client minimises its loss
            plus ``mu / 2 * ||w - w_global||^2``. 0 is plain FedAvg. Defaults to 0.
        client_optim_state (str): ``'fresh'`` (default): every client starts
            each round with an empty optimizer state, as in FedAvg, where
            clients are stateless; momentum or Adam moments from a round ago
            point at a model that no longer exists, and checkpoints stay the
            global model. ``'keep'``: each client keeps its own state between
            the rounds it takes part in (saved in checkpoints).
        nonfinite (str): ``'drop'`` (default): a client whose loss (or
            weights) is not finite leaves that round's average, with a
            warning; a round in which every client failed stops training.
            ``'stop'``: training stops with a ``FloatingPointError``.
        seed (int, optional): Base of client selection, data order and
            augmentation seeds. Defaults to ``randomness.seed`` (else 0).
    """

    def __init__(self, runner, dataloader: Union[dict, object], rounds: int, local_iters: int,
                 partition: dict, clients_per_round: Union[int, float] = 1.0, val_begin: int = 1,
                 val_interval: int = 1, mu: float = 0.0, client_optim_state: str = 'fresh',
                 nonfinite: str = 'drop', seed: Optional[int] = None) -> None:
        for name, value in (('rounds', rounds), ('local_iters', local_iters),
                            ('val_begin', val_begin), ('val_interval', val_interval)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'train_cfg.{name} of FedAvgTrainLoop must be a positive int, '
                                 f'got {value!r}.')
        if client_optim_state not in OPTIM_STATES:
            raise ValueError(f'train_cfg.client_optim_state must be one of {OPTIM_STATES}, '
                             f'got {client_optim_state!r}.')
        if nonfinite not in NONFINITE_ACTIONS:
            raise ValueError(f'train_cfg.nonfinite must be one of {NONFINITE_ACTIONS}, '
                             f'got {nonfinite!r}.')
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not mu >= 0:
            raise ValueError(f'train_cfg.mu (FedProx) must be a number >= 0, got {mu!r}.')
        if not isinstance(dataloader, dict):
            raise TypeError('FedAvgTrainLoop builds one loader per client from the '
                            'train_dataloader config; give train_dataloader as a dict, got '
                            f'{type(dataloader).__name__}.')
        if not isinstance(runner.optim_wrapper, dict):
            raise TypeError('FedAvgTrainLoop builds each client\'s optimizer from the '
                            'optim_wrapper config; give optim_wrapper as a dict.')
        self._runner = runner
        self._max_iters = rounds
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.local_iters = local_iters
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.mu = float(mu)
        self.client_optim_state = client_optim_state
        self.nonfinite = nonfinite
        self.stop_training = False
        if seed is None:
            seed = (runner.cfg.get('randomness') or {}).get('seed')
        self.seed = 0 if seed is None else int(seed)
        self.optim_wrapper_cfg = copy.deepcopy(runner.optim_wrapper)
        self.local_wrapper: Optional[OptimWrapper] = None
        self.client_states: Dict[int, dict] = {}

        datasets = client_datasets(partition, dataloader.get('dataset'), self.seed)
        self.num_clients = (len(partition['datasets']) if partition['type'] == 'by_dataset'
                            else partition['num_clients'])
        self.clients_per_round = self._clients_per_round(clients_per_round)
        self.clients: Dict[int, Client] = {
            client.index: client
            for client in build_clients(runner, datasets, dataloader, self.seed)}
        first = self.clients[min(self.clients)]
        self.dataloader = first.loader  # what runner.train_dataloader shows hooks
        num_classes = len((getattr(first.loader.dataset, 'metainfo', None) or {}).get(
            'classes', ())) or None
        log_clients(runner, list(self.clients.values()), num_classes)
        runner.register_hook(_FedAvgStateHook(self))
        # The run has one epoch and counts rounds as iterations: log training
        # lines and validation metrics (TensorBoard, scalars.json) by round.
        runner.log_processor.by_epoch = False
        for hook in runner.hooks:
            if isinstance(hook, LoggerHook):
                hook.log_metric_by_epoch = False

    def _clients_per_round(self, value: Union[int, float]) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f'train_cfg.clients_per_round must be an int or a fraction, got '
                             f'{value!r}.')
        if isinstance(value, float):
            if not 0 < value <= 1:
                raise ValueError(f'train_cfg.clients_per_round as a fraction must be in (0, 1],'
                                 f' got {value}.')
            return max(1, int(round(value * self.num_clients)))
        if not 1 <= value <= self.num_clients:
            raise ValueError(f'train_cfg.clients_per_round must be in 1..{self.num_clients} '
                             f'(the number of clients), got {value}.')
        return value

    @property
    def max_epochs(self) -> int:
        return self._max_epochs

    @property
    def max_iters(self) -> int:
        return self._max_iters

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def iter(self) -> int:
        return self._iter

    @property
    def model(self) -> torch.nn.Module:
        """The detector itself: clients train it directly, never through DDP, whose
        gradient all-reduce would mix clients of different processes."""
        model = self.runner.model
        return model.module if is_model_wrapper(model) else model

    def select_clients(self, round_index: int) -> List[int]:
        """The clients of round ``round_index``: the same on every process."""
        if self.clients_per_round == self.num_clients:
            return list(range(self.num_clients))
        rng = np.random.default_rng([self.seed, round_index, self.num_clients])
        return sorted(rng.choice(self.num_clients, self.clients_per_round,
                                 replace=False).tolist())

    def run(self) -> torch.nn.Module:
        """Train ``rounds`` rounds (from the resumed one), validating on the way."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        self.local_wrapper = self.runner.build_optim_wrapper(
            copy.deepcopy(self.optim_wrapper_cfg))
        if self._iter > 0:
            self.runner.logger.info(f'FedAvg: resuming at round {self._iter + 1}.')
        while self._iter < self._max_iters and not self.stop_training:
            self.run_round()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_round(self) -> None:
        """One round: local training of this process's picked clients, then the average."""
        round_index = self._iter
        self.runner.call_hook('before_train_iter', batch_idx=round_index, data_batch=None)
        model = self.model
        global_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
        averager = WeightAverager(global_state)
        log_sums: Dict[str, float] = defaultdict(float)
        failures = []
        for index in self.select_clients(round_index):
            client = self.clients.get(index)
            if client is None:
                continue  # another process trains it
            log_vars, failure = self.train_client(client, round_index, global_state)
            if failure is not None:
                failures.append((index, failure))
                continue
            averager.add(model.state_dict(), client.num_samples)
            for key, value in log_vars.items():
                log_sums[key] += value * client.num_samples
        log_sums['num_samples'] = float(averager.total_weight.item())
        if self.client_optim_state == 'keep' and get_world_size() > 1:
            # Every rank (rank 0 saves checkpoints) gets the states its owners hold.
            own = {index: state for index, state in self.client_states.items()
                   if index in self.clients}
            for states in all_gather_object(own):
                self.client_states.update(states)
        gathered = all_gather_object((failures, dict(log_sums)))
        failures = sorted(failure for rank_failures, _ in gathered for failure in rank_failures)
        averaged = averager.reduce()
        model.load_state_dict(averaged if averaged is not None else global_state)
        self._handle_failures(round_index, failures, averaged is None)
        self.runner.call_hook('after_train_iter', batch_idx=round_index, data_batch=None,
                              outputs=self._round_outputs([sums for _, sums in gathered]))
        self._iter += 1

    def _handle_failures(self, round_index: int, failures: list, none_left: bool) -> None:
        if not failures:
            return
        described = '; '.join(f'client {index}: {why}' for index, why in failures)
        if self.nonfinite == 'stop' or none_left:
            reason = ('every client of the round failed' if none_left and self.nonfinite ==
                      'drop' else "train_cfg.nonfinite='stop'")
            raise FloatingPointError(
                f'FedAvg stopped in round {round_index + 1} ({reason}): {described}. The global '
                'model was not updated and no checkpoint was written from this round. Lower '
                'the learning rate, add optim_wrapper.clip_grad, or check these clients\' data.')
        self.runner.logger.warning(f'FedAvg round {round_index + 1}: dropped from the average '
                                   f'(loss not finite): {described}.')

    @staticmethod
    def _round_outputs(all_sums: List[dict]) -> dict:
        """The sample-weighted mean of each logged loss over the round's clients."""
        total = sum(sums.get('num_samples', 0.0) for sums in all_sums)
        keys = sorted({key for sums in all_sums for key in sums} - {'num_samples'})
        if not total:
            return {}
        return {key: torch.tensor(sum(sums.get(key, 0.0) for sums in all_sums) / total)
                for key in keys}

    def _start_local_optimizer(self, client: int) -> OptimWrapper:
        """The local optimizer, state fresh or the client's own, schedule from the server's."""
        wrapper = self.local_wrapper
        saved = self.client_states.get(client)
        if self.client_optim_state == 'keep' and saved is not None:
            wrapper.optimizer.load_state_dict(saved)
        else:
            wrapper.optimizer.state = defaultdict(dict)
        server_groups = self.runner.optim_wrapper.optimizer.param_groups
        for local, server in zip(wrapper.optimizer.param_groups, server_groups):
            for key in SCHEDULED_KEYS:
                if key in server:
                    local[key] = server[key]
        wrapper.initialize_count_status(self.model, 0, self.local_iters)
        return wrapper

    def _proximal_term(self, global_state: dict) -> torch.Tensor:
        """FedProx: ``mu / 2 * ||w - w_global||^2`` over the trainable parameters."""
        squares = [(param - global_state[name]).pow(2).sum()
                   for name, param in self.model.named_parameters() if param.requires_grad]
        return 0.5 * self.mu * torch.stack(squares).sum()

    def train_client(self, client: Client, round_index: int,
                     global_state: dict) -> tuple:
        """Train ``client`` from the global weights for ``local_iters`` steps.

        Returns:
            tuple: (mean of each logged loss over the steps, None) or
            (None, why the client failed) when a loss or the final weights
            are not finite.
        """
        model = self.model
        model.load_state_dict(global_state)
        model.train()
        _seed_everything(derived_seed(self.seed, round_index, client.index))
        client.sampler.set_round(round_index)
        wrapper = self._start_local_optimizer(client.index)
        bad_sample_hooks = [hook for hook in self.runner.hooks
                            if type(hook).__name__ == 'BadSampleHook']
        sums: Dict[str, float] = defaultdict(float)
        batches = iter(client.loader)
        for step in range(self.local_iters):
            data_batch = next(batches)
            for hook in bad_sample_hooks:  # pops skip records before the model sees them
                hook.before_train_iter(self.runner, round_index, data_batch)
            with wrapper.optim_context(model):
                data = model.data_preprocessor(data_batch, True)
                losses = model._run_forward(data, mode='loss')
            loss, log_vars = model.parse_losses(losses)
            if self.mu > 0:
                proximal = self._proximal_term(global_state)
                loss = loss + proximal
                log_vars['loss_prox'] = proximal.detach()
            if not torch.isfinite(loss).all():
                values = {key: float(value.detach()) for key, value in log_vars.items()}
                terms = [f'{key}={value:g}' for key, value in values.items()
                         if not math.isfinite(value)]
                return None, (f'loss not finite at local iteration {step + 1} '
                              f'({", ".join(terms) or "total loss"})')
            wrapper.update_params(loss)
            for key, value in log_vars.items():
                sums[key] += float(value.detach())
        del batches  # its workers end now
        if not all(torch.isfinite(param).all() for param in model.parameters()):
            return None, f'weights not finite after {self.local_iters} local iterations'
        if self.client_optim_state == 'keep':
            self.client_states[client.index] = _to_cpu(wrapper.optimizer.state_dict())
        return {key: value / self.local_iters for key, value in sums.items()}, None


def _to_cpu(value):
    """A copy of an optimizer state dict with its tensors on the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to('cpu', copy=True)
    if isinstance(value, dict):
        return {key: _to_cpu(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_to_cpu(item) for item in value)
    return value
