"""Process set-up for multi-process runs, on GPUs (NCCL) and on CPUs (gloo).

mmengine's ``pytorch`` launcher calls ``torch.cuda.set_device`` and wraps the
model in DDP with ``device_ids=[LOCAL_RANK]``; both fail without CUDA.
:func:`init_distributed` starts a gloo process group instead and
:func:`ddp_wrapper_cfg` gives the DDP config without device ids. DetRunner
calls them; :func:`distributed_process` wraps a tool's body.
"""
import atexit
import contextlib
import datetime
import os
import sys
from typing import Iterator, Optional

import torch


def init_distributed(launcher: str, backend: Optional[str] = None,
                     timeout: Optional[float] = None) -> str:
    """Start the process group for ``--launcher pytorch`` when mmengine can't.

    With CUDA, mmengine's own launcher is right (one GPU per process, NCCL) and
    this does nothing. Without CUDA it starts a gloo group from torchrun's
    environment, so mmengine sees an initialised group and skips its launcher.

    Returns:
        str: The device kind the run will use, ``'cuda'`` or ``'cpu'``.
    """
    if launcher == 'none':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if torch.cuda.is_available():
        processes = int(os.environ.get('LOCAL_WORLD_SIZE', 1))
        if processes > torch.cuda.device_count():
            raise RuntimeError(
                f'{processes} processes on this machine but {torch.cuda.device_count()} CUDA '
                'GPU(s): with CUDA each process trains on a GPU of its own (NCCL). Start at most '
                'as many processes as GPUs (tools/dist_train.sh CONFIG NUM_GPUS).')
        return 'cuda'
    if launcher != 'pytorch':
        raise RuntimeError(f"--launcher {launcher} needs CUDA GPUs; on a CPU-only machine use "
                           "--launcher pytorch under torchrun (gloo) or --launcher none.")
    if not torch.distributed.is_initialized():
        extra = {} if timeout is None else dict(timeout=datetime.timedelta(seconds=timeout))
        torch.distributed.init_process_group(backend=backend or 'gloo', **extra)
    return 'cpu'


def ddp_wrapper_cfg(find_unused_parameters: bool = False) -> dict:
    """DDP for CPU processes: no ``device_ids`` (mmengine passes ``[LOCAL_RANK]``)."""
    return dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False,
                find_unused_parameters=find_unused_parameters)


def setup_launcher(cfg) -> None:
    """Prepare ``cfg`` (in place) for its ``launcher``; DetRunner.from_cfg
    calls it on its own copy of the config.

    On CPUs: the gloo backend and DDP without devices. With several processes:
    ``BufferSyncHook`` (every rank saves and evaluates the same BN statistics),
    a different random seed per rank (``diff_rank_seed``) with the sampler's
    shuffling seed still fixed, so each rank draws its own augmentations while
    the shards stay a partition and a resumed run replays the same order.
    """
    if cfg.get('launcher', 'none') == 'none':
        return
    if not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'
        cfg.model_wrapper_cfg = ddp_wrapper_cfg(cfg.get('find_unused_parameters', False))
        if cfg.get('sync_bn') is not None:
            raise ValueError(
                f"sync_bn={cfg.sync_bn!r} needs CUDA GPUs: torch's SyncBatchNorm refuses CPU "
                'tensors. Leave sync_bn unset for a multi-process CPU run.')
    if cfg.get('sync_bn') not in (None, 'torch'):
        raise ValueError(f"sync_bn={cfg.sync_bn!r} is not supported: use sync_bn='torch' "
                         "(mmcv's SyncBatchNorm needs mmcv's compiled ops).")
    custom_hooks = list(cfg.get('custom_hooks', []))
    if not any(hook.get('type') == 'BufferSyncHook' for hook in custom_hooks):
        custom_hooks.append(dict(type='BufferSyncHook'))
    cfg.custom_hooks = custom_hooks
    randomness = cfg.get('randomness') or {}
    if randomness.get('seed') is not None:
        randomness.setdefault('diff_rank_seed', True)
        sampler = cfg.get('train_dataloader', {}).get('sampler')
        if randomness['diff_rank_seed'] and sampler is not None:
            sampler.setdefault('seed', randomness['seed'])
        cfg.randomness = randomness


def close_distributed() -> bool:
    """Close the process group mmengine leaves open; True if there was one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
        return True
    return False


@contextlib.contextmanager
def distributed_process() -> Iterator[None]:
    """Run a tool's body; close the process group and, after a multi-process
    run that succeeded, leave the process without interpreter finalization.

    Exit handlers still run (log files, TensorBoard writers, DataLoader
    workers) and output is flushed; only the interpreter's teardown is
    skipped. A gloo worker thread can still hold the last reference to a
    finished collective's tensor when the interpreter starts finalizing;
    releasing it then needs the GIL and the process aborts (``terminate called
    without an active exception``) after its work is done. DDP keeps the group
    and its threads alive past ``destroy_process_group``, so this happens in
    about one 2-process CPU run in five under load. A failing run raises as
    usual, with its traceback.
    """
    try:
        yield
    finally:
        was_distributed = close_distributed()
    if was_distributed:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
