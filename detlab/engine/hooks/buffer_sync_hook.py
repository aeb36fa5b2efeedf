"""BufferSyncHook: every process ends each iteration with the same BN statistics."""
import torch
import torch.distributed as torch_dist
from mmengine.dist import is_distributed
from mmengine.hooks import Hook

from detlab.registry import HOOKS


def average_float_buffers(module: torch.nn.Module) -> int:
    """Replace each floating-point buffer of ``module`` by its mean over all processes.

    Integer buffers (``num_batches_tracked``) are equal on every rank already.

    Returns:
        int: How many buffers were averaged (0 outside a process group).
    """
    buffers = [buffer for buffer in module.buffers() if buffer.is_floating_point()]
    if not buffers or not is_distributed():
        return 0
    flat = torch.cat([buffer.detach().reshape(-1).float() for buffer in buffers])
    torch_dist.all_reduce(flat)
    flat /= torch_dist.get_world_size()
    offset = 0
    for buffer in buffers:
        buffer.copy_(flat[offset:offset + buffer.numel()].view_as(buffer))
        offset += buffer.numel()
    return len(buffers)


@HOOKS.register_module()
class BufferSyncHook(Hook):
    """Average BatchNorm running statistics over the processes after each iteration.

    DDP all-reduces gradients, so parameters stay equal on every rank, but
    each rank updates its BN running mean/var from its own shard. Without this
    the checkpoint would hold rank 0's statistics while validation on rank
    ``r`` used rank ``r``'s, and N processes would not give the metrics that
    one process gives on the same checkpoint. Running before CheckpointHook
    (priority ABOVE_NORMAL), the averaged statistics are what is saved and
    evaluated. The all-reduce moves only the buffers (a few KB to MB), a small
    fraction of the gradients DDP already reduces. ``tools/train.py`` adds it to
    multi-process runs.
    """

    priority = 'ABOVE_NORMAL'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        average_float_buffers(runner.model)
