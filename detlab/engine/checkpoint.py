"""Checkpoint reading and writing for detlab's runs.

Reading: :func:`register_checkpoint_schemes` (called by
``register_all_modules()``) makes mmengine's ``CheckpointLoader`` read local
files with detlab's safe loader (``weights_only=True`` and an allow-list) and
resolve ``torchvision://``, ``open-mmlab://`` and ``http(s)://`` addresses to
the torch hub cache instead of downloading them.

Writing: mmengine writes a checkpoint in place, so a run killed mid-write (or
a full disk) leaves a truncated file that ``--resume`` then picks up.
:class:`AtomicLocalBackend` is mmengine's local file backend writing through a
temporary file that is renamed over the target; DetRunner and
``DetCheckpointHook`` save every checkpoint, the published one included,
through it (:func:`atomic_backend_args`), and ``DetCheckpointHook`` writes the
``last_checkpoint`` pointer the same way (:func:`write_last_checkpoint`).
"""
import errno
import io
import os
import os.path as osp
from typing import Any, Optional, Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio.backends import backends as registered_backends
from mmengine.runner import checkpoint as mmengine_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from detlab.utils.atomic import atomic_write
from detlab.utils.checkpoint import REMOTE_PREFIXES, load_checkpoint_file

#: Name under which :class:`AtomicLocalBackend` is registered with mmengine's file backends.
ATOMIC_BACKEND = 'detlab_atomic_local'
#: File in a work dir holding the path of the latest checkpoint (mmengine's
#: name; ``--resume`` without a path follows it).
LAST_CHECKPOINT = 'last_checkpoint'


class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend whose writes are all-or-nothing.

    ``put`` and ``put_text`` write a temporary file beside the target, flush
    it to disk and rename it over the target: a reader (or a resumed run) sees
    the previous file or the whole new one, never a truncated file. A full
    disk fails with a message that says the previous files are intact.
    """

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        write_atomically(obj, str(filepath))

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        write_atomically(obj.encode(encoding), str(filepath))


def write_atomically(data: bytes, filename: str) -> None:
    """Write ``data`` to ``filename`` through a renamed, fsynced temporary file.

    Raises:
        OSError: On a full disk (or quota), naming the file and its size and
            saying that the files already there are intact.
    """

    def write(tmp_path: str) -> None:
        with open(tmp_path, 'wb') as tmp_file:
            tmp_file.write(data)
            tmp_file.flush()
            os.fsync(tmp_file.fileno())

    try:
        atomic_write(filename, write)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OSError(error.errno, (
            f'No space left to save checkpoint {filename} ({len(data) / 2**20:.1f} MiB). Nothing '
            f'was overwritten: the checkpoints already in {osp.dirname(osp.abspath(filename))} '
            'are intact. Free space (or lower default_hooks.checkpoint.max_keep_ckpts, or use '
            f'another --work-dir), then continue with --resume. ({error.strerror})')) from error


def atomic_backend_args() -> dict:
    """``backend_args`` that make mmengine's file I/O use :class:`AtomicLocalBackend`."""
    if ATOMIC_BACKEND not in registered_backends:
        register_backend(ATOMIC_BACKEND, AtomicLocalBackend)
    return dict(backend=ATOMIC_BACKEND)


def is_local_path(path: Optional[str]) -> bool:
    """True for a path on the local file system (not a URL or another backend's prefix)."""
    return path is None or '://' not in str(path)


def save_checkpoint_atomically(checkpoint: dict, filename: str) -> None:
    """``torch.save(checkpoint)`` to a local ``filename``, all-or-nothing.

    Remote addresses go to mmengine's ``save_checkpoint`` unchanged.
    """
    if not is_local_path(filename):
        return mmengine_checkpoint.save_checkpoint(checkpoint, filename)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_atomically(buffer.getvalue(), filename)


def write_last_checkpoint(work_dir: str, checkpoint_path: str) -> None:
    """Point ``work_dir``'s ``last_checkpoint`` at ``checkpoint_path``, all-or-nothing.

    The pointer is written as mmengine writes it (the path as text, no
    newline), through a renamed temporary file: a run stopped while writing
    it leaves the previous pointer whole, where an in-place write could leave
    it empty or cut short.
    """
    write_atomically(str(checkpoint_path).encode('utf-8'), osp.join(work_dir, LAST_CHECKPOINT))


def _load_remote(filename: str, map_location: Any = None) -> Any:
    """CheckpointLoader's loader for remote schemes: the hub cache or an error."""
    return load_checkpoint_file(filename, map_location=map_location)


def register_checkpoint_schemes() -> None:
    """Make mmengine's ``CheckpointLoader`` read through detlab's safe, offline loader.

    Local paths load with ``weights_only=True`` and the allow-list of
    :mod:`detlab.utils.checkpoint`; remote schemes resolve to the torch hub
    cache or fail with a message saying which file to put where. Registered
    through ``CheckpointLoader.register_scheme``, the loader mmengine offers
    for this; calling it again changes nothing.
    """
    CheckpointLoader.register_scheme(prefixes='', loader=load_checkpoint_file, force=True)
    CheckpointLoader.register_scheme(prefixes=REMOTE_PREFIXES, loader=_load_remote, force=True)
    atomic_backend_args()
