"""What mmengine 0.10.7 gets wrong on current PyTorch, fixed in one place.

1. Loading checkpoints. Since torch 2.6 ``torch.load`` defaults to
   ``weights_only=True`` and mmengine's own checkpoints (MessageHub's
   ``HistoryBuffer``, numpy scalars and arrays in ``meta``, OneCycleLR's
   annealing function) no longer load, so ``--resume`` fails. detlab loads every local checkpoint with
   ``weights_only=True`` and allow-lists exactly the types mmengine writes;
   nothing is ever unpickled beyond that list.
2. No downloads. mmengine fetches ``http(s)://``, ``torchvision://`` and
   ``open-mmlab://`` checkpoints at run time; detlab runs offline. Such an
   address resolves to the file torch.hub would have cached it as
   (``<torch hub dir>/checkpoints/<file name>``) when that file is there, and
   otherwise the error says which file to put where (:func:`resolve_checkpoint`).
3. Atomic checkpoints. mmengine writes a checkpoint in place, so a run killed
   mid-write (or a full disk) leaves a truncated file that ``--resume`` then
   picks up. detlab writes to a temporary file beside it and renames; a full
   disk fails with a message that says the previous checkpoints are intact.
4. Distributed training on CPU. mmengine's ``pytorch`` launcher calls
   ``torch.cuda.set_device`` and wraps the model in DDP with
   ``device_ids=[LOCAL_RANK]``; both fail without CUDA. :func:`init_distributed`
   starts a gloo process group instead, and :func:`ddp_wrapper_cfg` gives the
   DDP config without device ids.

5. Unknown type names. mmengine's root registries build in detlab's scope by
   looking the name up in detlab's child registry; an unknown name then fails
   with no hint. :func:`apply_mmengine_fixes` gives them detlab's message with
   the closest known names (``get`` and ``in`` keep returning None/False).

6. ``--auto-scale-lr``. mmengine logs only the ratio it scales by; detlab also
   logs the base and the scaled learning rate of every parameter group.

7. Leaving a gloo run (a torch fault, not mmengine's). A gloo worker thread
   can still hold the last reference to a finished collective's tensor when
   the interpreter starts finalizing; releasing it then needs the GIL, and the
   process aborts (``terminate called without an active exception``, SIGABRT)
   after its work is done. DDP keeps the group and its threads alive past
   ``destroy_process_group``, so it happens in about one 2-process CPU run in
   five under load. :func:`distributed_process` runs the exit handlers and
   leaves with ``os._exit`` once a multi-process run has finished.

8. ``compile`` and ``channels_last``. mmengine's ``compile=True`` compiles the
   whole ``train_step`` (data preprocessing, target assignment, losses and the
   optimizer update), which graph-breaks throughout and recompiles for every
   new number of boxes; detlab compiles the detector's backbone and neck in
   place (:func:`compile_backbone_and_neck`; checkpoint keys unchanged).
   ``channels_last=True``, a detlab config key beside it, moves the model's
   4-D weights to channels_last before it is wrapped (:func:`wrap_model_in_memory_format`):
   every convolution then runs in NHWC, without converting each input.

9. Validation metrics of iteration-based runs. ``LoggerHook`` writes them to
   TensorBoard and ``scalars.json`` at ``step=runner.epoch`` unless the config
   sets ``log_metric_by_epoch=False``, and an ``IterBasedTrainLoop``'s epoch
   stays 0: every validation of the run lands on step 0, over the previous
   one. In iteration-based runs detlab logs them at the iteration, as the
   training scalars are (:func:`log_val_metrics_at_iteration`).

:func:`apply_mmengine_fixes` installs 1-3, 5, 6, 8 and 9; importing ``detlab.engine`` calls it.
"""
import atexit
import collections
import contextlib
import datetime
import errno
import difflib
import io
import os
import os.path as osp
import pickle
import sys
from typing import Any, Iterator, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.hooks import LoggerHook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner import runner as mmengine_runner
from mmengine.runner.checkpoint import CheckpointLoader

from detlab import registry as detlab_registry
from detlab.utils.atomic import atomic_write

#: URL-like checkpoint prefixes that mmengine would download.
REMOTE_PREFIXES = ('http://', 'https://', 'torchvision://', 'modelzoo://', 'open-mmlab://',
                   'openmmlab://', 'mmcls://', 'pavi://', 's3://')


def _numpy_safe_globals() -> list:
    """The numpy objects a pickled array, scalar or dtype is rebuilt from."""
    multiarray = getattr(np, '_core', None) or np.core
    reconstruct, scalar = multiarray.multiarray._reconstruct, multiarray.multiarray.scalar
    found = [np.ndarray, np.dtype, reconstruct, scalar,
             # Checkpoints written under numpy 1.x (most MMDetection ones) name numpy.core.
             (reconstruct, 'numpy.core.multiarray._reconstruct'),
             (scalar, 'numpy.core.multiarray.scalar')]
    # numpy >= 1.25 pickles each dtype as its own class (np.dtypes.Float64DType, ...).
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')]
    return found


#: HistoryBuffer statistics that mmengine pickles as ``getattr(HistoryBuffer, name)``.
HISTORY_BUFFER_STATISTICS = ('min', 'max', 'current', 'mean')
#: OneCycleParamScheduler keeps its annealing function (a staticmethod) in its
#: state; pickle writes it as ``getattr(OneCycleParamScheduler, name)``.
ONE_CYCLE_ANNEALING = ('_annealing_cos', '_annealing_linear')
ONE_CYCLE_PATH = 'mmengine.optim.scheduler.param_scheduler.OneCycleParamScheduler'


class _AttributesOnly:
    """Stands in for a class while unpickling: not callable, and only the
    named attributes can be looked up through :func:`_allow_listed_getattr`."""

    def __init__(self, owner: type, names: tuple) -> None:
        self.owner, self.names = owner, names

    def __repr__(self) -> str:
        return f'{self.owner.__name__} (attributes {", ".join(self.names)} only)'


_ONE_CYCLE_STAND_IN = _AttributesOnly(OneCycleParamScheduler, ONE_CYCLE_ANNEALING)


def _allowed_lookups() -> dict:
    """Each object ``getattr`` may be asked about while unpickling, and the names."""
    history = tuple(HISTORY_BUFFER_STATISTICS) + tuple(HistoryBuffer._statistics_methods)
    return {HistoryBuffer: history, _ONE_CYCLE_STAND_IN: ONE_CYCLE_ANNEALING}


def _allow_listed_getattr(owner: Any, name: str) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: answers only for
    HistoryBuffer's statistics methods and OneCycleParamScheduler's annealing
    functions, so the allow-list stays closed."""
    allowed = _allowed_lookups()
    if any(owner is known for known in allowed) and name in allowed[owner]:
        return getattr(owner.owner if isinstance(owner, _AttributesOnly) else owner, name)
    choices = '; '.join(f'{known!r}: {sorted(names)}' for known, names in allowed.items())
    raise pickle.UnpicklingError(
        f'weights_only=True: the checkpoint asks for getattr({owner!r}, {name!r}); only these '
        f'may be looked up (HistoryBuffer statistics, OneCycle annealing): {choices}.')


#: Every non-tensor type an mmengine checkpoint holds (meta, message hub, schedulers).
CHECKPOINT_SAFE_GLOBALS = [HistoryBuffer, collections.OrderedDict, collections.defaultdict,
                           (_allow_listed_getattr, 'builtins.getattr'),
                           (_ONE_CYCLE_STAND_IN, ONE_CYCLE_PATH),
                           *_numpy_safe_globals()]


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and detlab's allow-list.

    Args:
        filename (str): Path of a file written by ``torch.save``.
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: The file does not exist (the path is named).
        RuntimeError: The file is a remote address, or holds types outside the
            allow-list (they are named; nothing is unpickled).
    """
    filename = resolve_checkpoint(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename}')
    try:
        with _allow_listed():
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as error:
        if 'weights_only' not in str(error) and 'Unsupported global' not in str(error):
            raise
        raise RuntimeError(
            f'{filename} holds Python objects that detlab does not load (checkpoints are read '
            'with weights_only=True; only tensors, containers, numpy arrays/scalars and '
            f'mmengine log buffers are allowed). torch said: {error}') from None


def _allow_listed():
    """A context in which torch.load(weights_only=True) accepts the allow-list."""
    serialization = torch.serialization
    if hasattr(serialization, 'safe_globals'):  # torch >= 2.5
        return serialization.safe_globals(CHECKPOINT_SAFE_GLOBALS)
    if hasattr(serialization, 'add_safe_globals'):  # torch 2.4
        serialization.add_safe_globals(CHECKPOINT_SAFE_GLOBALS)
    return contextlib.nullcontext()  # torch < 2.4: plain tensors and containers only


#: Model-zoo schemes whose names mmengine maps to download URLs.
TORCHVISION_SCHEMES = ('torchvision://', 'modelzoo://')
OPENMMLAB_SCHEMES = ('open-mmlab://', 'openmmlab://')


def checkpoint_url(address: str) -> Optional[str]:
    """The URL mmengine would download ``address`` from, or None if it has none.

    ``torchvision://resnet50`` and ``open-mmlab://name`` are looked up in the
    tables mmengine ships (no network); ``http(s)://`` addresses are their own URL.

    Raises:
        KeyError: A model-zoo name that the table lacks (close names are listed).
    """
    if address.startswith(('http://', 'https://')):
        return address
    if address.startswith(TORCHVISION_SCHEMES):
        table = mmengine_checkpoint.get_torchvision_models()
    elif address.startswith(OPENMMLAB_SCHEMES):
        table = mmengine_checkpoint.get_external_models()
    else:
        return None
    name = address.split('://', 1)[1]
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=5, cutoff=0.5)
        raise KeyError(f'{address!r}: mmengine knows no checkpoint named {name!r}'
                       + (f'; close names: {close}.' if close else '.'))
    url = table[name]
    return url if url.startswith(('http://', 'https://')) else None


def hub_cache_path(url: str) -> str:
    """Where ``torch.hub`` keeps the file it downloads from ``url``."""
    return osp.join(torch.hub.get_dir(), 'checkpoints', osp.basename(urlparse(url).path))


def resolve_checkpoint(address: str) -> str:
    """The local file to read for a checkpoint path, URL or model-zoo name.

    A local path is returned as given (``~`` expanded). A URL or model-zoo
    name (``torchvision://resnet50``, ``open-mmlab://...``, ``https://...``)
    resolves to the file torch.hub would have cached it as, when that file
    exists; nothing is downloaded.

    Raises:
        RuntimeError: A remote address without a cached file; the message
            names the URL and the exact path to put the file at.
    """
    if not address.startswith(REMOTE_PREFIXES):
        return osp.expanduser(address)
    try:
        url = checkpoint_url(address)
    except KeyError as error:
        raise RuntimeError(f'{refuse_download_message(address)} {error.args[0]}') from None
    if url is not None:
        cached = hub_cache_path(url)
        if osp.isfile(cached):
            return cached
    raise RuntimeError(refuse_download_message(address, url))


def refuse_download_message(address: str, url: Optional[str] = None) -> str:
    """Why ``address`` was not loaded and which file to put where instead."""
    message = (f'detlab never downloads checkpoints at run time, and {address!r} is a remote '
               'address. ')
    give_local = 'Give a local path instead'
    if url is not None:
        cached = hub_cache_path(url)
        message += (f'Put the file {url} at {cached} (on a machine with network: python -c '
                    f'"import torch; torch.hub.download_url_to_file(\'{url}\', '
                    f'\'{osp.basename(cached)}\')", then copy it there), or ')
        give_local = give_local.lower()
    return message + give_local + (
        ' (for example '
        "load_from='checkpoints/retinanet.pth', or init_cfg=dict(type='Pretrained', "
        "checkpoint='checkpoints/resnet50.pth') for a backbone).")


def _load_remote(filename: str, map_location: Any = None) -> Any:
    """CheckpointLoader's loader for remote schemes: the hub cache or an error."""
    return load_checkpoint_file(filename, map_location=map_location)


def save_checkpoint_atomically(checkpoint: dict, filename: str, file_client_args=None,
                               backend_args=None) -> None:
    """mmengine's ``save_checkpoint`` for local paths, written via a renamed temp file."""
    if filename.startswith(REMOTE_PREFIXES) or backend_args or file_client_args:
        return _mmengine_save_checkpoint(checkpoint, filename, file_client_args=file_client_args,
                                         backend_args=backend_args)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)

    def write(tmp_path: str) -> None:
        with open(tmp_path, 'wb') as tmp_file:
            tmp_file.write(buffer.getbuffer())
            tmp_file.flush()
            os.fsync(tmp_file.fileno())

    try:
        atomic_write(filename, write)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(error.errno, (
            f'No space left to save checkpoint {filename} ({buffer.getbuffer().nbytes / 2**20:.1f}'
            ' MiB). Nothing was overwritten: the checkpoints already in '
            f'{osp.dirname(osp.abspath(filename))} are intact. Free space (or lower '
            "default_hooks.checkpoint.max_keep_ckpts, or use another --work-dir), then continue "
            f'with --resume. ({error.strerror})')) from error


def scale_lr_and_log(runner, optim_wrapper, auto_scale_lr: Optional[dict] = None) -> None:
    """mmengine's ``Runner.scale_lr``, then a log line with the base and scaled lrs."""
    if not auto_scale_lr or not auto_scale_lr.get('enable', False):
        return _mmengine_scale_lr(runner, optim_wrapper, auto_scale_lr)
    wrappers = (list(optim_wrapper.values()) if isinstance(optim_wrapper, OptimWrapperDict)
                else [optim_wrapper])
    base = [group['lr'] for wrapper in wrappers for group in wrapper.optimizer.param_groups]
    _mmengine_scale_lr(runner, optim_wrapper, auto_scale_lr)
    scaled = [group['lr'] for wrapper in wrappers for group in wrapper.optimizer.param_groups]
    pairs = sorted({(before, after) for before, after in zip(base, scaled)})
    loader = runner._train_dataloader  # the config dict or the built loader, as mmengine reads it
    batch_size = loader['batch_size'] if isinstance(loader, dict) else loader.batch_size
    runner.logger.info(
        f"auto_scale_lr: base_batch_size {auto_scale_lr['base_batch_size']}, actual batch size "
        f'{runner.world_size} processes x {batch_size}; learning rate '
        + ', '.join(f'{before:.6g} -> {after:.6g}' for before, after in pairs)
        + f' ({len(base)} parameter groups)')


_mmengine_save_checkpoint = mmengine_checkpoint.save_checkpoint
_mmengine_scale_lr = mmengine_runner.Runner.scale_lr
_mmengine_wrap_model = mmengine_runner.Runner.wrap_model


def wrap_model_in_memory_format(runner, model_wrapper_cfg: Optional[dict], model):
    """mmengine's ``Runner.wrap_model``; first, with ``channels_last=True`` in
    the config, the model's 4-D parameters and buffers move to channels_last.

    Done before DDP builds its gradient buckets, so they match the weights'
    strides. Convolutions follow the weights' format, so inputs need no change.
    """
    channels_last = runner.cfg.get('channels_last', False)
    if not isinstance(channels_last, bool):
        raise TypeError(f'channels_last must be True or False, got {channels_last!r}')
    if channels_last and not is_model_wrapper(model):
        model.to(memory_format=torch.channels_last)
        runner.logger.info('channels_last: the model\'s convolution weights are NHWC.')
    return _mmengine_wrap_model(runner, model_wrapper_cfg, model)


def compile_backbone_and_neck(runner, target: str) -> None:
    """``compile=True`` (or a dict of ``torch.compile`` options) compiles the
    detector's ``backbone`` and ``neck`` in place, for training and the
    validation inside it. ``target`` (mmengine's ``'train_step'``) is unused.
    """
    compile_cfg = runner.cfg.get('compile')
    if compile_cfg is None or compile_cfg is False:
        return
    if compile_cfg is True:
        compile_cfg = {}
    if not isinstance(compile_cfg, dict):
        raise TypeError('compile must be True, False or a dict of torch.compile options, '
                        f'got {compile_cfg!r}')
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    parts = [name for name in ('backbone', 'neck') if getattr(model, name, None) is not None]
    if not parts:
        raise ValueError(f'compile: {type(model).__name__} has neither a backbone nor a neck '
                         'to compile.')
    for name in parts:
        getattr(model, name).compile(**compile_cfg)
    runner.logger.info(f"compile: {' and '.join(parts)} compiled with torch.compile"
                       f'({compile_cfg}); the first iterations of each input size are slow.')


_mmengine_after_val_epoch = LoggerHook.after_val_epoch


def log_val_metrics_at_iteration(hook: LoggerHook, runner,
                                 metrics: Optional[dict] = None) -> None:
    """mmengine's ``LoggerHook.after_val_epoch``, with the metrics of a run
    trained by iterations logged at ``runner.iter`` rather than at epoch 0."""
    if not (hook.log_metric_by_epoch and isinstance(runner._train_loop, IterBasedTrainLoop)):
        return _mmengine_after_val_epoch(hook, runner, metrics)
    hook.log_metric_by_epoch = False
    try:
        return _mmengine_after_val_epoch(hook, runner, metrics)
    finally:
        hook.log_metric_by_epoch = True


_applied = False


def apply_mmengine_fixes() -> None:
    """Install the checkpoint fixes (idempotent)."""
    global _applied
    if _applied:
        return
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=REMOTE_PREFIXES, loader=_load_remote,
                                     force=True)
    mmengine_runner.save_checkpoint = save_checkpoint_atomically
    mmengine_runner.Runner.scale_lr = scale_lr_and_log
    mmengine_runner.Runner.wrap_model = wrap_model_in_memory_format
    mmengine_runner.Runner._maybe_compile = compile_backbone_and_neck
    LoggerHook.after_val_epoch = log_val_metrics_at_iteration
    for registry in vars(detlab_registry).values():
        if isinstance(registry, detlab_registry.Registry) and registry.parent is not None:
            registry.parent.build_func = registry.with_close_names(registry.parent.build_func)
    _applied = True


def init_distributed(launcher: str, backend: Optional[str] = None,
                     timeout: Optional[float] = None) -> str:
    """Start the process group for ``--launcher pytorch`` when mmengine can't.

    With CUDA, mmengine's own launcher is right (one GPU per process, NCCL) and
    this does nothing. Without CUDA it starts a gloo group from torchrun's
    environment, so mmengine sees an initialised group and skips its launcher.

    Returns:
        str: The device kind the run will use, ``'cuda'`` or ``'cpu'``.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return 'cuda' if torch.cuda.is_available() else 'cpu'
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
    """Prepare ``cfg`` for its ``launcher``.

    On CPUs: a gloo group and DDP without devices. With several processes:
    ``BufferSyncHook`` (every rank saves and evaluates the same BN statistics),
    a different random seed per rank (``diff_rank_seed``) with the sampler's
    shuffling seed still fixed, so each rank draws its own augmentations while
    the shards stay a partition and a resumed run replays the same order.
    """
    # dist_cfg.timeout (seconds) bounds how long ranks wait for a dead peer.
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout')
    device = init_distributed(cfg.launcher, timeout=timeout)
    if cfg.launcher == 'none':
        return
    if device == 'cpu':
        cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
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
    workers) and output is flushed; only the teardown that races torch's gloo
    worker threads is skipped (fix 7 of this module). A failing run raises as
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
