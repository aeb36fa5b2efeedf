"""Which parts of a detector the config key ``compile`` compiles with ``torch.compile``.

``compile=True`` compiles the backbone and the neck in place (``nn.Module.compile``: the
module keeps its state_dict keys; its ``__call__`` runs the compiled forward).
``compile=dict(parts=[...], **options)`` picks the parts among ``'backbone'``, ``'neck'`` and
``'head'`` and passes every other key to ``torch.compile`` (``mode``, ``backend``,
``dynamic``, ...). ``'head'`` is the dense head's ``forward`` (its conv towers): the
``bbox_head`` of a single-stage detector, the ``rpn_head`` of a two-stage one; its target
assignment and losses stay eager, as they hold data-dependent shapes (the number of boxes)
that would recompile or break the graph at every batch. DETR-like heads, which take the
transformer's outputs, are not dense heads and cannot be chosen.
"""
from typing import Dict, List, Sequence, Union

import torch

from ..dense_heads.base_dense_head import BaseDenseHead

COMPILE_PARTS = ('backbone', 'neck', 'head')
DEFAULT_COMPILE_PARTS = ('backbone', 'neck')


def dense_head(model: torch.nn.Module):
    """The model's dense head (``rpn_head`` or ``bbox_head``) or None."""
    for name in ('rpn_head', 'bbox_head'):
        head = getattr(model, name, None)
        if isinstance(head, BaseDenseHead):
            return head
    return None


def compile_targets(model: torch.nn.Module, parts: Sequence[str],
                    strict: bool = True) -> Dict[str, torch.nn.Module]:
    """The modules that ``parts`` name in ``model``, by part name.

    Args:
        parts: names among :data:`COMPILE_PARTS`.
        strict: raise ValueError for a part the model lacks (a neck-less model, a DETR
            head); with False such parts are left out.
    """
    if isinstance(parts, str) or not all(isinstance(part, str) for part in parts):
        raise TypeError(f'compile: parts must be a list of part names among {COMPILE_PARTS}, '
                        f'got {parts!r}')
    unknown = [part for part in parts if part not in COMPILE_PARTS]
    if unknown:
        raise ValueError(f'compile: unknown part(s) {unknown} in parts={list(parts)}; '
                         f'valid parts are {COMPILE_PARTS}')
    found = dict(backbone=getattr(model, 'backbone', None), neck=getattr(model, 'neck', None),
                 head=dense_head(model))
    missing = [part for part in parts if found[part] is None]
    if missing and strict:
        raise ValueError(f'compile: {type(model).__name__} has no {" or ".join(missing)} to '
                         f'compile (parts={list(parts)}; a head must be a dense head: '
                         'bbox_head or rpn_head)')
    return {part: found[part] for part in dict.fromkeys(parts) if found[part] is not None}


def compile_detector(model: torch.nn.Module, setting: Union[bool, dict, None]) -> List[str]:
    """Compile the parts of ``model`` that the config value ``compile`` names, in place.

    Args:
        setting: None or False (nothing), True (backbone and neck, default options) or a
            dict: ``parts`` (default ``['backbone', 'neck']``) and ``torch.compile``'s
            keyword arguments.

    Returns:
        The names of the compiled parts.
    """
    if setting is None or setting is False:
        return []
    if setting is True:
        setting = {}
    if not isinstance(setting, dict):
        raise TypeError('compile must be True, False or a dict of torch.compile options '
                        f'(with an optional parts=[...] among {COMPILE_PARTS}), got {setting!r}')
    options = dict(setting)
    parts = options.pop('parts', DEFAULT_COMPILE_PARTS)
    if not parts:
        raise ValueError(f'compile: parts is empty; name some of {COMPILE_PARTS} or set '
                         'compile=False')
    targets = compile_targets(model, parts, strict='parts' in setting)
    if not targets:
        raise ValueError(f'compile: {type(model).__name__} has neither a backbone nor a neck '
                         'to compile.')
    for module in targets.values():
        module.compile(**options)
    return list(targets)
