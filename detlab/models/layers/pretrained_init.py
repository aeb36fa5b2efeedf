"""The ``Pretrained`` weight initializer: local or hub-cached files, never a download.

mmengine's own ``Pretrained`` fetches ``torchvision://``, ``open-mmlab://`` and
``http(s)://`` checkpoints and unpickles them in full. detlab registers an
initializer of the same name in its own WEIGHT_INITIALIZERS; mmengine's
``initialize`` builds initializers through the registry of the current default
scope, so under ``default_scope='detlab'`` every ``init_cfg=dict(type='Pretrained',
...)`` (and every MMDetection config adopted by detlab) lands here.
"""
import os.path as osp
from typing import Dict, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model.weight_init import update_init_info
from mmengine.runner.checkpoint import load_state_dict
from torch import nn

from detlab.utils.checkpoint import load_checkpoint_file, resolve_checkpoint
from detlab.registry import WEIGHT_INITIALIZERS
from detlab.structures.errors import AssertionKeyError, AssertionTypeError, AssertionValueError

#: Key under which mmengine/MMDetection checkpoints keep the model weights.
STATE_DICT_KEY = 'state_dict'
#: Key under which the original Swin and PVT repositories' checkpoints keep them.
ORIGINAL_MODEL_KEY = 'model'
#: Prefix that DataParallel/DistributedDataParallel put in front of every key.
DATA_PARALLEL_PREFIX = 'module.'


def load_local_state_dict(checkpoint: str, map_location: str = 'cpu',
                          container_keys: Sequence[str] = (STATE_DICT_KEY, )
                          ) -> Dict[str, torch.Tensor]:
    """Read the weights of a local checkpoint file without unpickling code.

    Args:
        checkpoint (str): Path of a file written by ``torch.save``: a plain
            state dict, or a checkpoint dict holding it under one of
            ``container_keys``.
        map_location (str): Where to map the tensors. Defaults to ``'cpu'``.
        container_keys (Sequence[str]): Keys that may hold the weights, tried
            in order. Defaults to ``('state_dict', )``, mmengine's.

    Returns:
        dict[str, Tensor]: Parameter/buffer name -> tensor, with any
        ``module.`` prefix from (Distributed)DataParallel removed.

    Raises:
        RuntimeError: ``checkpoint`` is a URL or model-zoo name whose file is
            not in the torch hub cache (the message says which file to put where).
        FileNotFoundError: The local file does not exist.
        TypeError: The file does not hold a dict of weights.
    """
    if not isinstance(checkpoint, str) or not checkpoint:
        raise AssertionTypeError(f'init_cfg.checkpoint must be a path string, got {checkpoint!r}')
    path = resolve_checkpoint(checkpoint)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'init_cfg.checkpoint: no such file {path!r}. Set init_cfg=dict(type='
            "'Pretrained', checkpoint=...) to the path of a local .pth file.")
    loaded = load_checkpoint_file(path, map_location=map_location)
    container = next((key for key in container_keys
                      if isinstance(loaded, dict) and isinstance(loaded.get(key), dict)), None)
    if container is not None:
        loaded = loaded[container]
    if not isinstance(loaded, dict) or not all(
            isinstance(value, torch.Tensor) for value in loaded.values()):
        raise AssertionTypeError(f'init_cfg.checkpoint={path!r} does not hold a state dict (name '
                                 f'-> tensor), nor a dict with one under {list(container_keys)}.')
    return {
        (key[len(DATA_PARALLEL_PREFIX):] if key.startswith(DATA_PARALLEL_PREFIX) else key): value
        for key, value in loaded.items()
    }


def select_prefix(state_dict: Dict[str, torch.Tensor], prefix: str,
                  checkpoint: str) -> Dict[str, torch.Tensor]:
    """Keep the entries under ``prefix`` (e.g. ``'backbone.'``), prefix removed.

    Raises:
        KeyError: No key starts with ``prefix``; the message lists the
            top-level names that the checkpoint does have.
    """
    if not prefix.endswith('.'):
        prefix += '.'
    selected = {key[len(prefix):]: value for key, value in state_dict.items()
                if key.startswith(prefix)}
    if not selected:
        top_level = sorted({key.split('.', 1)[0] + '.' for key in state_dict})
        raise AssertionKeyError(f'init_cfg.prefix={prefix!r}: no key of {checkpoint!r} starts '
                                f'with it; its top-level prefixes are {top_level}.')
    return selected


@WEIGHT_INITIALIZERS.register_module(name='Pretrained')
class PretrainedInit:
    """Initialise a module from a local checkpoint file (offline).

    Args:
        checkpoint (str): Local path of the checkpoint, or a URL / model-zoo
            name (``torchvision://resnet50``) whose file is already in the
            torch hub cache; nothing is downloaded.
        prefix (str, optional): Load only the sub-dict under this prefix, e.g.
            ``'backbone.'`` to initialise a backbone from a whole detector.
            Defaults to None (the whole state dict).
        map_location (str): Where to map the tensors. Defaults to ``'cpu'``.
    """

    def __init__(self, checkpoint: str, prefix: Optional[str] = None,
                 map_location: str = 'cpu') -> None:
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.map_location = map_location

    def __call__(self, module: nn.Module) -> None:
        """Load the weights into ``module`` with ``strict=False``.

        Missing, unexpected and shape-mismatched keys are logged, not raised,
        so a backbone can take ImageNet weights that carry a classifier.
        """
        state_dict = load_local_state_dict(self.checkpoint, self.map_location)
        what = 'weights'
        if self.prefix is not None:
            state_dict = select_prefix(state_dict, self.prefix, self.checkpoint)
            what = f'{self.prefix!r} weights'
        print_log(f'load {what} from local file {self.checkpoint}', logger='current')
        load_state_dict(module, state_dict, strict=False, logger='current')
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=f'{type(self).__name__}: load from '
                             f'{self.checkpoint}')


def load_backbone_checkpoint(owner: str, init_cfg) -> Dict[str, torch.Tensor]:
    """The weights that a backbone which loads its own checkpoint names in ``init_cfg``.

    Swin and PVT read ``init_cfg=dict(type='Pretrained', checkpoint=...)`` themselves,
    because they convert the original repositories' keys first. The file may be an
    mmengine checkpoint (``'state_dict'``), an original one (``'model'``) or a plain state
    dict; URLs resolve to the torch hub cache as everywhere in detlab.

    Raises:
        ValueError: ``init_cfg`` names no checkpoint (only ``Pretrained`` is supported).
    """
    if not isinstance(init_cfg, dict) or 'checkpoint' not in init_cfg:
        raise AssertionValueError(
            f"{owner}: init_cfg must be None or dict(type='Pretrained', checkpoint=PATH or URL), "
            f'got {init_cfg!r}.')
    return load_local_state_dict(init_cfg['checkpoint'],
                                 container_keys=(STATE_DICT_KEY, ORIGINAL_MODEL_KEY))
