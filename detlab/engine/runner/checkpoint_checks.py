"""What DetRunner checks before it trusts a checkpoint, and the messages it gives.

- ``--resume`` needs a training checkpoint (``meta`` with ``epoch`` and
  ``iter``, the message hub); a model-only one is for ``load_from``.
- Testing needs a checkpoint that fits the model: the same keys and shapes.
- ``--resume`` without a path follows ``last_checkpoint``; when that pointer is
  empty or names a missing file, the error says so and lists the checkpoints.
- A truncated checkpoint is named, with the latest intact one beside it.
"""
import os
import os.path as osp
import re
import zipfile
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from ..checkpoint import LAST_CHECKPOINT

#: Names CheckpointHook gives the checkpoints it saves (before any published suffix).
CHECKPOINT_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')
#: What a checkpoint needs for ``--resume`` (mmengine's Runner.resume reads these).
TRAINING_META_KEYS = ('epoch', 'iter')
#: Mismatched keys named in an error; the rest are counted.
SHOWN_MISMATCHES = 5


def saved_checkpoints(directory: str) -> List[str]:
    """The ``epoch_N.pth``/``iter_N.pth`` files in ``directory``, oldest (lowest N) first."""
    if not osp.isdir(directory):
        return []
    found = [(match[1], int(match[2]), name) for name in os.listdir(directory)
             if (match := CHECKPOINT_NAME.match(name))]
    return [osp.join(directory, name) for _, _, name in sorted(found)]


def is_intact(path: str) -> bool:
    """True when ``path`` is a complete zip-format checkpoint (its central
    directory, written last, is there and every record's CRC checks out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile):
        return False


def latest_intact_checkpoint(directory: str, before: Optional[str] = None) -> Optional[str]:
    """The newest intact checkpoint in ``directory`` other than ``before``, or None."""
    skip = osp.abspath(before) if before else None
    for path in reversed(saved_checkpoints(directory)):
        if osp.abspath(path) != skip and is_intact(path):
            return path
    return None


def damaged_resume_message(filename: str, reason: str) -> str:
    """``reason`` (the loader's message naming ``filename``) and which checkpoint to resume from."""
    directory = osp.dirname(osp.abspath(filename))
    previous = latest_intact_checkpoint(directory, before=filename)
    if previous is None:
        return (f'{reason}. There is no intact checkpoint beside it in {directory}: train '
                'without --resume to start afresh.')
    return (f'{reason}. The latest intact checkpoint in {directory} is {previous}: resume '
            f'from it with --resume {previous} (and delete or move {filename}).')


def checkpoint_from_last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (without a path) continues from, or None
    when ``work_dir`` has no ``last_checkpoint`` (a fresh run).

    Raises:
        FileNotFoundError: ``last_checkpoint`` is empty or names a file that
            does not exist; the message says so and lists the checkpoints.
    """
    pointer = osp.join(work_dir, LAST_CHECKPOINT)
    if not osp.isfile(pointer):
        return None
    with open(pointer) as pointer_file:
        named = pointer_file.read().strip()
    if named and osp.isfile(named):
        return named
    fault = ('is empty' if not named
             else f'names {named}, which does not exist')
    found = saved_checkpoints(work_dir)
    listing = (f'Checkpoints in {work_dir}: {", ".join(osp.basename(p) for p in found)}. Resume '
               f'from one with --resume {found[-1]} (or write its path into {pointer})'
               if found else f'There are no checkpoints in {work_dir}; delete {pointer}')
    raise FileNotFoundError(
        f'--resume follows {pointer}, and that file is at fault: it {fault}. {listing}, or '
        'train without --resume to start afresh.')


def require_training_checkpoint(checkpoint: dict, filename: str) -> None:
    """Raise unless ``checkpoint`` is one a training run saved (for ``--resume``)."""
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    if isinstance(meta, dict) and all(key in meta for key in TRAINING_META_KEYS):
        return
    held = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise ValueError(
        f'{filename} is not a training checkpoint: --resume needs the epoch, iteration, '
        f'optimizer and scheduler state that a training run saves (meta.epoch, meta.iter), and '
        f'this file holds only {held}, as a model-only or published checkpoint does. To '
        f'start training from these weights, use load_from instead of --resume: '
        f"--cfg-options load_from='{filename}'.")


def model_state_dict(checkpoint: dict, revise_keys: List[Tuple[str, str]]) -> Dict:
    """The checkpoint's weights (under ``state_dict``, or the whole dict) with
    the keys revised as mmengine's loader revises them."""
    state_dict = checkpoint.get('state_dict', checkpoint)
    for pattern, replacement in revise_keys:
        state_dict = {re.sub(pattern, replacement, key): value
                      for key, value in state_dict.items()}
    return state_dict


def checkpoint_mismatches(model: nn.Module, state_dict: Dict) -> List[str]:
    """Each way ``state_dict`` does not fit ``model``: missing keys, unexpected
    keys and shape mismatches, in the model's key order."""
    expected = model.state_dict()
    problems = []
    for key, value in expected.items():
        if key not in state_dict:
            problems.append(f'{key} missing from the checkpoint (model: {tuple(value.shape)})')
        elif (isinstance(state_dict[key], torch.Tensor)
              and state_dict[key].shape != value.shape):
            problems.append(f'{key}: checkpoint {tuple(state_dict[key].shape)}, model '
                            f'{tuple(value.shape)}')
    problems += [f'{key} unexpected: the model has no such key'
                 for key in state_dict if key not in expected]
    return problems


def require_checkpoint_fits(model: nn.Module, checkpoint: dict, filename: str,
                            revise_keys: List[Tuple[str, str]]) -> None:
    """Raise unless every weight of ``model`` is in ``checkpoint`` with its shape, and nothing more.

    Raises:
        ValueError: Naming the file, the first mismatched keys and their
            shapes, and the option that allows a partial load.
    """
    problems = checkpoint_mismatches(model, model_state_dict(checkpoint, revise_keys))
    if not problems:
        return
    shown = '; '.join(problems[:SHOWN_MISMATCHES])
    more = (f' (and {len(problems) - SHOWN_MISMATCHES} more)'
            if len(problems) > SHOWN_MISMATCHES else '')
    raise ValueError(
        f'The checkpoint {filename} does not fit the model {type(model).__name__} of this '
        f'config: {len(problems)} mismatches, first {shown}{more}. Check that the config '
        'is the one the checkpoint was trained with (architecture, num_classes). To evaluate '
        'with only the weights that fit anyway, pass --allow-partial-checkpoint '
        '(allow_partial_checkpoint=True in the config).')
