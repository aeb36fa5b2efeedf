"""Federated clients: who holds which images, and each client's data loader.

A client is an id ``0..K-1``, a dataset it alone reads and a loader with a
:class:`~detlab.datasets.samplers.ClientSampler`. With several processes
client ``k`` belongs to rank ``k * world_size // K`` (contiguous groups) and
only that rank builds its dataset and loader, so a process reads the images of
its own clients only. ``iid`` and ``dirichlet`` partitions read every
client's annotations (the split needs the labels) on every rank, never the
images of other clients; ``by_dataset`` clients have their own dataset
configs and a rank reads nothing of the others.
"""
import copy
from dataclasses import dataclass
from typing import List, Optional

import numpy as np
from mmengine.dist import all_gather_object, get_rank, get_world_size
from torch.utils.data import DataLoader, Subset

from detlab.datasets.federated import (PARTITION_TYPES, class_histogram, dirichlet_partition,
                                       image_labels, iid_partition)
from detlab.datasets.samplers import ClientSampler
from detlab.registry import DATASETS


@dataclass
class Client:
    """One client of this process: its id, image count and loader."""
    index: int
    num_samples: int
    loader: DataLoader
    sampler: ClientSampler


def owner_rank(client: int, num_clients: int, world_size: int) -> int:
    """The process rank that trains ``client`` (contiguous, balanced groups)."""
    return client * world_size // num_clients


def _build_dataset(cfg):
    dataset = DATASETS.build(cfg) if isinstance(cfg, dict) else cfg
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    return dataset


def _subset(dataset, indices: np.ndarray):
    """The images ``indices`` of ``dataset``, keeping its type when it can (mmengine's
    ``get_subset``: metainfo, ``get_cat_ids``), else a torch ``Subset``."""
    if hasattr(dataset, 'get_subset'):
        return dataset.get_subset(indices.tolist())
    return Subset(dataset, indices.tolist())


def client_datasets(partition: dict, dataset_cfg, seed: int) -> dict:
    """The datasets of this process's clients, keyed by client id.

    Args:
        partition (dict): ``type`` (``iid``, ``dirichlet`` or ``by_dataset``)
            and its keys: ``num_clients`` (iid, dirichlet), ``alpha`` and
            ``min_size`` (dirichlet), ``datasets`` (by_dataset: one config per
            client, each merged onto ``dataset_cfg``, or a built dataset),
            ``seed`` (optional).
        dataset_cfg: ``train_dataloader.dataset`` (config or dataset).
        seed (int): Seed of the split when ``partition`` has none.
    """
    if not isinstance(partition, dict) or partition.get('type') not in PARTITION_TYPES:
        raise ValueError(f'train_cfg.partition must be a dict with type one of {PARTITION_TYPES}'
                         f', got {partition!r}.')
    kind = partition['type']
    allowed = {'iid': {'num_clients', 'seed'}, 'dirichlet': {'num_clients', 'alpha', 'seed',
                                                             'min_size'},
               'by_dataset': {'datasets'}}[kind]
    unknown = set(partition) - allowed - {'type'}
    if unknown:
        raise ValueError(f'train_cfg.partition (type {kind!r}) has unknown keys '
                         f'{sorted(unknown)}; valid keys: {sorted(allowed)}.')
    rank, world_size = get_rank(), get_world_size()
    if kind == 'by_dataset':
        configs = partition.get('datasets')
        if not isinstance(configs, (list, tuple)) or not configs:
            raise ValueError("train_cfg.partition type 'by_dataset' needs datasets=[...], one "
                             f'dataset config per client; got {configs!r}.')
        _check_world_size(len(configs), world_size)
        base = dataset_cfg if isinstance(dataset_cfg, dict) else {}
        return {index: _build_dataset({**copy.deepcopy(base), **copy.deepcopy(dict(cfg))}
                                      if isinstance(cfg, dict) else cfg)
                for index, cfg in enumerate(configs)
                if owner_rank(index, len(configs), world_size) == rank}

    num_clients = partition.get('num_clients')
    _check_world_size(num_clients, world_size)
    dataset = _build_dataset(copy.deepcopy(dataset_cfg))
    split_seed = partition.get('seed', seed)
    if kind == 'iid':
        shares = iid_partition(len(dataset), num_clients, split_seed)
    else:
        if not hasattr(dataset, 'get_cat_ids'):
            raise TypeError(f"train_cfg.partition type 'dirichlet' splits by class and needs "
                            f'a dataset with get_cat_ids(idx); {type(dataset).__name__} has '
                            "none. Use type='iid' or 'by_dataset'.")
        if 'alpha' not in partition:
            raise ValueError("train_cfg.partition type 'dirichlet' needs alpha (e.g. 0.5).")
        labels = image_labels(len(dataset), dataset.get_cat_ids)
        shares = dirichlet_partition(labels, num_clients, partition['alpha'], split_seed,
                                     partition.get('min_size', 1))
    return {index: _subset(dataset, share) for index, share in enumerate(shares)
            if owner_rank(index, num_clients, world_size) == rank}


def _check_world_size(num_clients, world_size: int) -> None:
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f'train_cfg.partition.num_clients must be a positive int, got '
                         f'{num_clients!r}.')
    if num_clients < world_size:
        raise ValueError(f'{num_clients} federated clients cannot fill {world_size} processes '
                         '(each process trains a group of whole clients); use more clients or '
                         'fewer processes.')


def build_clients(runner, datasets: dict, dataloader_cfg: dict, seed: int) -> List[Client]:
    """One loader per client from ``train_dataloader``'s settings.

    The sampler becomes a :class:`ClientSampler` (it keeps the configured
    ``shuffle``); a configured ``batch_sampler`` stays. Workers are not
    persistent: they restart at every round, seeded from the round's seed, so
    augmentations depend on ``(seed, round, client)`` only.
    """
    shuffle = (dataloader_cfg.get('sampler') or {}).get('shuffle', True)
    clients = []
    for index, dataset in sorted(datasets.items()):
        cfg = {key: copy.deepcopy(value) for key, value in dataloader_cfg.items()
               if key != 'dataset'}
        cfg.update(dataset=dataset, persistent_workers=False,
                   sampler=dict(type=ClientSampler, client=index, seed=seed, shuffle=shuffle))
        loader = runner.build_dataloader(cfg, seed=None)
        batch_sampler = getattr(loader, 'batch_sampler', None)
        sampler = getattr(batch_sampler, 'sampler', loader.sampler)
        clients.append(Client(index, len(dataset), loader, sampler))
    return clients


def log_clients(runner, clients: List[Client], num_classes: Optional[int]) -> None:
    """Log every client's image count and instances per class once (on rank 0)."""
    mine = [(client.index, client.num_samples,
             class_histogram(client.loader.dataset, num_classes)) for client in clients]
    rows = sorted(row for rank_rows in all_gather_object(mine) for row in rank_rows)
    total = sum(count for _, count, _ in rows)
    lines = [f'FedAvg: {len(rows)} clients, {total} training images.']
    for index, count, histogram in rows:
        per_class = ('' if histogram is None else
                     f'; instances per class {histogram}')
        lines.append(f'  client {index}: {count} images{per_class}')
    runner.logger.info('\n'.join(lines))
