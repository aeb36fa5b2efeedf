"""The server's half of FedAvg: a sample-weighted average of client weights.

Every floating-point tensor of the state dict (parameters and BatchNorm
running statistics alike) becomes ``sum_k n_k w_k / sum_k n_k`` over the
clients ``k`` that finished the round, ``n_k`` being client ``k``'s number of
training images. The sums are kept in float64: each ``n_k w_k`` of a float32
weight is exact there, and the sum of a few of them nearly always is, so the
result does not depend on the order the clients are added in, nor on how they
are split among processes (one process, or a weighted all-reduce of partial
sums over many). Integer buffers are counters, not estimates
(``num_batches_tracked`` counts the batches a BatchNorm has seen): averaging
them would give a count no model reached, so each takes its largest value
among the clients (every client trains the same number of local iterations,
so that is the global count plus ``local_iters``).
"""
from typing import Dict, Optional

import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed


class WeightAverager:
    """Accumulates ``n_k * w_k`` of the clients one process trained; :meth:`reduce`
    sums the accumulations of all processes and divides.

    Args:
        reference (dict): The global state dict the round started from: it
            fixes the keys, shapes, dtypes and devices, and the integer
            buffers' starting values.
    """

    def __init__(self, reference: Dict[str, torch.Tensor]) -> None:
        self.reference = reference
        self.float_keys = [key for key, value in reference.items() if value.is_floating_point()]
        self.int_keys = [key for key, value in reference.items()
                         if not value.is_floating_point()]
        device = next(iter(reference.values())).device if reference else 'cpu'
        self.weighted_sum = torch.zeros(sum(reference[key].numel() for key in self.float_keys),
                                        dtype=torch.float64, device=device)
        self.int_max = self._flat(reference, self.int_keys, torch.int64)
        self.total_weight = torch.zeros(1, dtype=torch.float64, device=device)

    @staticmethod
    def _flat(state: Dict[str, torch.Tensor], keys: list, dtype: torch.dtype) -> torch.Tensor:
        if not keys:
            return torch.zeros(0, dtype=dtype)
        return torch.cat([state[key].detach().reshape(-1).to(dtype) for key in keys])

    def add(self, state: Dict[str, torch.Tensor], num_samples: int) -> None:
        """Add one client's trained state, weighted by its ``num_samples`` (> 0)."""
        if num_samples <= 0:
            raise ValueError(f'A client must hold at least one sample, got {num_samples}.')
        missing = set(self.reference) ^ set(state)
        if missing:
            raise KeyError(f'Client state dict keys differ from the global model: '
                           f'{sorted(missing)[:5]}')
        self.weighted_sum.add_(self._flat(state, self.float_keys, torch.float64),
                               alpha=num_samples)
        self.int_max = torch.maximum(self.int_max,
                                     self._flat(state, self.int_keys, torch.int64).to(
                                         self.int_max.device))
        self.total_weight += num_samples

    def reduce(self) -> Optional[Dict[str, torch.Tensor]]:
        """The average over every client of every process, or None if none was added.

        In a process group this is a collective: every rank must call it.
        """
        if is_distributed():
            torch_dist.all_reduce(self.weighted_sum)
            torch_dist.all_reduce(self.total_weight)
            if self.int_max.numel():
                int_max = self.int_max.to(self.weighted_sum.device)
                torch_dist.all_reduce(int_max, op=torch_dist.ReduceOp.MAX)
                self.int_max = int_max
        total = float(self.total_weight.item())
        if total == 0:
            return None
        mean = self.weighted_sum / total
        averaged, offset = {}, 0
        for key in self.float_keys:
            value = self.reference[key]
            averaged[key] = mean[offset:offset + value.numel()].view(value.shape).to(value.dtype)
            offset += value.numel()
        offset = 0
        for key in self.int_keys:
            value = self.reference[key]
            averaged[key] = self.int_max[offset:offset + value.numel()].view(value.shape).to(
                dtype=value.dtype, device=value.device)
            offset += value.numel()
        return {key: averaged[key] for key in self.reference}
