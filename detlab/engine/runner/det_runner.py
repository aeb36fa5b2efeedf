"""DetRunner: mmengine's Runner with what detlab's runs need on top."""
import copy
import functools
from typing import Callable, Dict, List, Optional, Union

import torch
from mmengine.device import get_device
from mmengine.dist import broadcast_object_list, is_distributed
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.model import BaseTTAModel, is_model_wrapper
from mmengine.optim import OptimWrapperDict
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

from detlab.registry import RUNNERS, close_name_hints
from detlab.utils.checkpoint import DamagedCheckpointError
from detlab.utils.config_types import check_config_types
from detlab.utils.fast_path import fused_optimizer_cfg, use_channels_last
from ..checkpoint import atomic_backend_args, is_local_path, register_checkpoint_schemes
from ..distributed import ddp_wrapper_cfg, init_distributed, setup_launcher
from .checkpoint_checks import (checkpoint_from_last_checkpoint, damaged_resume_message,
                                require_checkpoint_fits, require_training_checkpoint)
from .work_dir import WorkDirLock, claim_run_folder

#: Hooks every detlab run gets unless its config names them already.
DETLAB_DEFAULT_HOOKS = ('NumClassCheckHook', 'NonFiniteLossHook', 'BadSampleHook')
#: mmengine hooks that DetRunner builds as detlab's subclasses (same arguments).
HOOK_UPGRADES = {'CheckpointHook': 'DetCheckpointHook', CheckpointHook: 'DetCheckpointHook',
                 'LoggerHook': 'DetLoggerHook', LoggerHook: 'DetLoggerHook'}
#: Config key (and tools/test.py's --allow-partial-checkpoint) that lets
#: testing load a checkpoint that does not fit the model.
ALLOW_PARTIAL_CHECKPOINT = 'allow_partial_checkpoint'


def _with_close_name_hints(method: Callable) -> Callable:
    """Run ``method`` inside :func:`~detlab.registry.close_name_hints`."""

    @functools.wraps(method)
    def run(*args, **kwargs):
        with close_name_hints():
            return method(*args, **kwargs)

    return run


def _hook_type(hook) -> Optional[str]:
    """The type name of a hook given as a config dict or as an instance."""
    if isinstance(hook, dict):
        kind = hook.get('type')
        return kind if isinstance(kind, str) else getattr(kind, '__name__', None)
    return type(hook).__name__


@RUNNERS.register_module()
class DetRunner(Runner):
    """mmengine's ``Runner`` (same arguments and config keys) for detlab's runs.

    Selected by ``runner_type='DetRunner'`` (``configs/_base_/default_runtime.py``)
    and built by ``RUNNERS.build(cfg)``. On top of mmengine it:

    - saves every checkpoint atomically (through a renamed temporary file),
      builds ``CheckpointHook``/``LoggerHook`` as ``DetCheckpointHook``/
      ``DetLoggerHook`` (atomic published checkpoint;
      validation metrics of iteration-based runs logged at their iteration);
    - reads checkpoints with detlab's safe, offline loader and checks them:
      ``--resume`` needs a training checkpoint, testing a checkpoint that fits
      the model (unless ``allow_partial_checkpoint=True``), a truncated file
      or a broken ``last_checkpoint`` is named with what to do;
    - logs the base and scaled learning rates of ``auto_scale_lr``;
    - applies the config keys ``channels_last`` (4-D weights in NHWC before
      wrapping; by default on CUDA) and ``compile`` (``torch.compile`` on the
      detector's backbone and neck, keeping checkpoint keys), and steps
      optimizers fused on CUDA;
    - starts a gloo process group and DDP without device ids on CPU-only
      machines (``launcher='pytorch'``), and syncs buffers and seeds ranks
      apart in multi-process runs (:func:`~detlab.engine.distributed.setup_launcher`);
    - adds NumClassCheckHook, NonFiniteLossHook and BadSampleHook;
    - gives each run its own log folder and refuses a second training run in
      a work dir that another one is training in;
    - answers an unknown type name with the closest known names.
    """

    @classmethod
    def from_cfg(cls, cfg) -> 'DetRunner':
        """Build the runner from a config, which is copied, not changed."""
        cfg = copy.deepcopy(cfg)
        with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'detlab'):
            check_config_types(cfg)
        setup_launcher(cfg)
        with close_name_hints():
            return super().from_cfg(cfg)

    @_with_close_name_hints
    def __init__(self, *args, **kwargs) -> None:
        register_checkpoint_schemes()
        self._work_dir_lock: Optional[WorkDirLock] = None
        self._checkpoint_must_fit = False
        self._resuming = False
        super().__init__(*args, **kwargs)

    def setup_env(self, env_cfg: Dict) -> None:
        """mmengine's set-up, with a gloo group on CPUs and a log folder of this run's own."""
        if self.distributed and not is_distributed():
            # dist_cfg.timeout (seconds) bounds how long ranks wait for a dead peer.
            init_distributed(self.launcher, timeout=env_cfg.get('dist_cfg', {}).get('timeout'))
        super().setup_env(env_cfg)
        folder = [claim_run_folder(self._work_dir, self._timestamp) if self.rank == 0 else None]
        if self.world_size > 1:
            broadcast_object_list(folder)
        self._timestamp = folder[0]

    # Hooks ----------------------------------------------------------------

    def register_hook(self, hook, priority=None) -> None:
        """mmengine's ``register_hook``; CheckpointHook and LoggerHook configs
        are built as detlab's subclasses."""
        if isinstance(hook, dict) and hook.get('type') in HOOK_UPGRADES:
            hook = dict(hook, type=HOOK_UPGRADES[hook['type']])
        super().register_hook(hook, priority=priority)

    def register_hooks(self, default_hooks: Optional[Dict] = None,
                       custom_hooks: Optional[List] = None) -> None:
        """mmengine's hooks, plus detlab's default hooks the config does not name."""
        custom_hooks = list(custom_hooks or [])
        named = {_hook_type(hook) for hook in custom_hooks + list((default_hooks or {}).values())
                 if hook is not None}
        custom_hooks += [dict(type=name) for name in DETLAB_DEFAULT_HOOKS if name not in named]
        super().register_hooks(default_hooks, custom_hooks)

    # Model ----------------------------------------------------------------

    def wrap_model(self, model_wrapper_cfg: Optional[Dict], model: torch.nn.Module):
        """mmengine's ``wrap_model``; first, the model's 4-D parameters and buffers move to
        channels_last where :func:`~detlab.utils.fast_path.use_channels_last` says so (the
        config key ``channels_last``; by default on CUDA).

        Done before DDP builds its gradient buckets, so they match the weights'
        strides; convolutions follow the weights' format, so inputs need no
        change. A multi-process run without CUDA gets DDP without device ids.
        """
        setting = self.cfg.get('channels_last', None)
        if use_channels_last(setting, get_device()) and not is_model_wrapper(model):
            model.to(memory_format=torch.channels_last)
            default = ' (the default on CUDA; channels_last=False turns it off)' \
                if setting is None else ''
            self.logger.info(f"channels_last: the model's convolution weights are NHWC{default}.")
        if self.distributed and model_wrapper_cfg is None and not torch.cuda.is_available():
            model_wrapper_cfg = ddp_wrapper_cfg(self.cfg.get('find_unused_parameters', False))
        return super().wrap_model(model_wrapper_cfg, model)

    def build_optim_wrapper(self, optim_wrapper):
        """mmengine's ``build_optim_wrapper``; on CUDA the optimizer steps fused where it
        can (:func:`~detlab.utils.fast_path.fused_optimizer_cfg`)."""
        return super().build_optim_wrapper(fused_optimizer_cfg(optim_wrapper, get_device()))

    def _maybe_compile(self, target: str) -> None:
        """``compile=True`` compiles the detector's ``backbone`` and ``neck`` in place;
        ``compile=dict(parts=[...], **options)`` picks the parts (``'backbone'``,
        ``'neck'``, ``'head'``: the dense head's forward) and passes the other keys to
        ``torch.compile`` (:func:`~detlab.models.detectors.compile_parts.compile_detector`).

        mmengine compiles the whole ``train_step`` (data preprocessing, target
        assignment, losses and the optimizer update), which graph-breaks
        throughout and recompiles for every new number of boxes. Compiled in
        place, the modules keep their checkpoint keys, and the validation
        inside training uses them too. ``target`` (mmengine's
        ``'train_step'``) is unused.
        """
        from detlab.models.detectors.compile_parts import compile_detector
        compile_cfg = self.cfg.get('compile')
        model = self.model.module if is_model_wrapper(self.model) else self.model
        parts = compile_detector(model, compile_cfg)
        if parts:
            options = {key: value for key, value in compile_cfg.items() if key != 'parts'} \
                if isinstance(compile_cfg, dict) else {}
            self.logger.info(f"compile: {' and '.join(parts)} compiled with torch.compile"
                             f'({options}); the first iterations of each input size are slow.')

    # Optimisation ----------------------------------------------------------

    def scale_lr(self, optim_wrapper, auto_scale_lr: Optional[Dict] = None) -> None:
        """mmengine's ``scale_lr``, then a log line with the base and scaled lrs."""
        if not auto_scale_lr or not auto_scale_lr.get('enable', False):
            return super().scale_lr(optim_wrapper, auto_scale_lr)
        wrappers = (list(optim_wrapper.values()) if isinstance(optim_wrapper, OptimWrapperDict)
                    else [optim_wrapper])
        base = [group['lr'] for wrapper in wrappers for group in wrapper.optimizer.param_groups]
        super().scale_lr(optim_wrapper, auto_scale_lr)
        scaled = [group['lr'] for wrapper in wrappers for group in wrapper.optimizer.param_groups]
        pairs = sorted(set(zip(base, scaled)))
        loader = self._train_dataloader  # the config dict or the built loader
        batch_size = loader['batch_size'] if isinstance(loader, dict) else loader.batch_size
        self.logger.info(
            f"auto_scale_lr: base_batch_size {auto_scale_lr['base_batch_size']}, actual batch "
            f'size {self.world_size} processes x {batch_size}; learning rate '
            + ', '.join(f'{before:.6g} -> {after:.6g}' for before, after in pairs)
            + f' ({len(base)} parameter groups)')

    # Running ----------------------------------------------------------------

    @_with_close_name_hints
    def train(self) -> torch.nn.Module:
        """mmengine's ``train``, holding the work dir's lock while it runs."""
        self._lock_work_dir()
        try:
            return super().train()
        finally:
            if self._work_dir_lock is not None:
                self._work_dir_lock.release()
                self._work_dir_lock = None

    @_with_close_name_hints
    def val(self) -> dict:
        return super().val()

    @_with_close_name_hints
    def test(self) -> dict:
        """mmengine's ``test``, refusing a checkpoint that does not fit the model
        unless the config sets ``allow_partial_checkpoint=True``."""
        allow_partial = self.cfg.get(ALLOW_PARTIAL_CHECKPOINT, False)
        if not isinstance(allow_partial, bool):
            raise TypeError(f'{ALLOW_PARTIAL_CHECKPOINT} must be True or False, '
                            f'got {allow_partial!r}')
        self._checkpoint_must_fit = not allow_partial
        try:
            return super().test()
        finally:
            self._checkpoint_must_fit = False

    def _lock_work_dir(self) -> None:
        """Take the work dir's training lock on rank 0; every rank raises if it is taken."""
        problem = [None]
        if self.rank == 0:
            self._work_dir_lock = WorkDirLock(self.work_dir)
            problem[0] = self._work_dir_lock.acquire()
            if problem[0] is not None:
                self._work_dir_lock = None
        if self.world_size > 1:
            broadcast_object_list(problem)
        if problem[0] is not None:
            raise RuntimeError(problem[0])

    # Checkpoints ------------------------------------------------------------

    def load_or_resume(self) -> None:
        """mmengine's ``load_or_resume``; ``--resume`` without a path checks
        ``last_checkpoint`` first, so a broken pointer is named."""
        if self._resume and self._load_from is None and not self._has_loaded:
            self._load_from = checkpoint_from_last_checkpoint(self.work_dir)
            if self._load_from is None:
                self.logger.info(f'--resume: no checkpoint in {self.work_dir} yet, so training '
                                 'starts afresh.')
                self._resume = False
        super().load_or_resume()

    def resume(self, filename: str, *args, **kwargs) -> None:
        """mmengine's ``resume``, for training checkpoints only."""
        self._resuming = True
        try:
            super().resume(filename, *args, **kwargs)
        except DamagedCheckpointError as error:
            raise DamagedCheckpointError(damaged_resume_message(filename, str(error))) from None
        finally:
            self._resuming = False

    def load_checkpoint(self, filename: str, map_location: Union[str, Callable] = 'cpu',
                        strict: bool = False, revise_keys: list = [(r'^module.', '')]):
        """mmengine's ``load_checkpoint``, with detlab's checks.

        A resumed checkpoint must be a training checkpoint; under ``test()``
        the checkpoint must fit the model (same keys and shapes).
        """
        checkpoint = _load_checkpoint(filename, map_location=map_location)
        if self._resuming:
            require_training_checkpoint(checkpoint, filename)
        self.call_hook('after_load_checkpoint', checkpoint=checkpoint)
        model = self.model.module if is_model_wrapper(self.model) else self.model
        if self._checkpoint_must_fit:
            # A test-time-augmentation model holds the detector the checkpoint is of
            # (mmengine's load_state_dict loads into it the same way).
            detector = model.module if isinstance(model, BaseTTAModel) else model
            require_checkpoint_fits(detector, checkpoint, filename, revise_keys)
        checkpoint = _load_checkpoint_to_model(model, checkpoint, strict,
                                               revise_keys=revise_keys)
        self._has_loaded = True
        self.logger.info(f'Load checkpoint from {filename}')
        return checkpoint

    def save_checkpoint(self, out_dir: str, filename: str, file_client_args=None,
                        save_optimizer: bool = True, save_param_scheduler: bool = True,
                        meta: Optional[dict] = None, by_epoch: bool = True,
                        backend_args: Optional[dict] = None) -> None:
        """mmengine's ``save_checkpoint``, written atomically to a local ``out_dir``."""
        if backend_args is None and file_client_args is None and is_local_path(out_dir):
            backend_args = atomic_backend_args()
        super().save_checkpoint(out_dir, filename, file_client_args=file_client_args,
                                save_optimizer=save_optimizer,
                                save_param_scheduler=save_param_scheduler, meta=meta,
                                by_epoch=by_epoch, backend_args=backend_args)


def build_runner(cfg) -> Runner:
    """The runner a tool runs: ``RUNNERS.build(cfg)`` when the config names a
    ``runner_type`` (detlab's configs name ``DetRunner``), else mmengine's
    ``Runner.from_cfg``, as MMDetection's tools do."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)
