"""Reading checkpoint files safely and offline.

Loading. Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, and
mmengine's own checkpoints (MessageHub's ``HistoryBuffer``, numpy scalars and
arrays in ``meta``, OneCycleLR's annealing function) do not load with it.
:func:`load_checkpoint_file` reads every local checkpoint with
``weights_only=True`` and allow-lists exactly the types mmengine writes;
nothing is ever unpickled beyond that list.

No downloads. mmengine fetches ``http(s)://``, ``torchvision://`` and
``open-mmlab://`` checkpoints at run time; detlab runs offline. Such an
address resolves to the file torch.hub would have cached it as
(``<torch hub dir>/checkpoints/<file name>``) when that file is there, and
otherwise the error says which file to put where (:func:`resolve_checkpoint`).

Models (``Pretrained``) and metrics read files through this module;
``detlab.engine.checkpoint`` registers it as mmengine's checkpoint loader.
"""
import collections
import contextlib
import difflib
import os.path as osp
import pickle
from typing import Any, Optional
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.optim.scheduler.param_scheduler import OneCycleParamScheduler
from mmengine.runner import checkpoint as mmengine_checkpoint

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


class DamagedCheckpointError(RuntimeError):
    """A checkpoint file that ``torch.load`` cannot read: truncated or damaged."""


#: What torch says about a file cut short: its zip reader (the default format
#: since torch 1.6) misses the central directory or a record; the legacy
#: pickle format runs out of input.
DAMAGED_FILE_MESSAGES = ('PytorchStreamReader failed', 'failed reading zip archive',
                         'failed finding central directory', 'Ran out of input',
                         'unexpected EOF', 'invalid load key')


def is_damaged_file_error(error: BaseException) -> bool:
    """True when ``torch.load`` failed because the file is cut short or damaged."""
    return isinstance(error, EOFError) or any(text in str(error)
                                              for text in DAMAGED_FILE_MESSAGES)


def load_checkpoint_file(filename: str, map_location: Any = None) -> Any:
    """Load a local checkpoint with ``weights_only=True`` and detlab's allow-list.

    Args:
        filename (str): Path of a file written by ``torch.save``.
        map_location: As for :func:`torch.load`.

    Raises:
        FileNotFoundError: The file does not exist (the path is named).
        DamagedCheckpointError: The file is truncated or damaged (named).
        RuntimeError: The file is a remote address, or holds types outside the
            allow-list (they are named; nothing is unpickled).
    """
    filename = resolve_checkpoint(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file not found: {filename!r}')
    try:
        with _allow_listed():
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as error:
        if is_damaged_file_error(error):
            raise DamagedCheckpointError(
                f'Cannot read the checkpoint {filename} ({osp.getsize(filename)} bytes): the '
                'file is truncated or damaged, as a save that was interrupted leaves it. '
                f'torch said: {error}') from None
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
