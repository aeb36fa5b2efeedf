"""An endless, reproducible index stream over one federated client's images."""
import itertools
from typing import Iterator, Optional, Sized

import numpy as np
from torch.utils.data import Sampler

from detlab.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class ClientSampler(Sampler):
    """Shuffled passes over a whole client dataset, one stream per training round.

    Unlike mmengine's ``InfiniteSampler`` it never shards by process rank: in
    federated training a process trains whole clients, each on all of its own
    images. The order depends only on ``(seed, client, round)``
    (:meth:`set_round`), so a resumed run and a run with another number of
    processes draw the same batches.

    Args:
        dataset (Sized): The client's dataset.
        client (int): The client's id, part of the seed. Defaults to 0.
        seed (int, optional): Base seed; None means 0. Defaults to None.
        shuffle (bool): Shuffle each pass (else ``0..n-1`` repeated). Defaults to True.
    """

    def __init__(self, dataset: Sized, client: int = 0, seed: Optional[int] = None,
                 shuffle: bool = True) -> None:
        if len(dataset) == 0:
            raise ValueError(f'ClientSampler: client {client} has no images.')
        self.dataset = dataset
        self.client = client
        self.seed = 0 if seed is None else seed
        self.shuffle = shuffle
        self.round = 0

    def set_round(self, round_index: int) -> None:
        """Start the stream of round ``round_index`` at the next ``iter()``."""
        self.round = round_index

    def __iter__(self) -> Iterator[int]:
        size = len(self.dataset)
        for draw in itertools.count():
            if not self.shuffle:
                yield from range(size)
                continue
            rng = np.random.default_rng([self.seed, self.client, self.round, draw])
            yield from rng.permutation(size).tolist()

    def __len__(self) -> int:
        return len(self.dataset)
