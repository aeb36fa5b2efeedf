"""Defaults of the GPU fast path: channels_last memory format and fused optimizer steps.

On CUDA, convolutions in NHWC (``channels_last``) let cuDNN use its tensor-core kernels
without layout conversions, and a fused optimizer updates every parameter in one kernel
instead of one per tensor. Neither helps on the CPU (NHWC convolutions there are slower
for detlab's models, and CPU numbers must equal MMDetection's bit for bit), so both are
defaults on CUDA only; a config turns them off with ``channels_last=False`` or
``optim_wrapper.optimizer.fused=False``.
"""
import copy
import inspect
from typing import Optional, Union

import torch


def use_channels_last(setting: Optional[bool], device: Union[str, torch.device]) -> bool:
    """Whether a model on ``device`` goes to channels_last: the config key ``channels_last``
    when it is set (True or False), else True on CUDA and False elsewhere."""
    if setting is not None and not isinstance(setting, bool):
        raise TypeError(f'channels_last must be True, False or None (the default: True on '
                        f'CUDA), got {setting!r}')
    if setting is not None:
        return setting
    return torch.device(device).type == 'cuda'


def supports_fused(optimizer_type) -> bool:
    """Whether a torch optimizer class takes ``fused=True`` (Adam, AdamW, SGD, ... in
    current torch; none in torch 2.1 but Adam/AdamW)."""
    return inspect.isclass(optimizer_type) and issubclass(optimizer_type, torch.optim.Optimizer) \
        and 'fused' in inspect.signature(optimizer_type.__init__).parameters


def fused_optimizer_cfg(optim_wrapper: dict, device: Union[str, torch.device]) -> dict:
    """``optim_wrapper`` with ``fused=True`` added to its optimizer on CUDA, where the
    optimizer supports it and the config chose neither ``fused`` nor ``foreach``.

    Returns a copy; configs of several optimizers (an OptimWrapperDict through a
    constructor) and optimizers given as objects are returned unchanged.
    """
    if torch.device(device).type != 'cuda' or not isinstance(optim_wrapper, dict):
        return optim_wrapper
    optimizer = optim_wrapper.get('optimizer')
    if not isinstance(optimizer, dict) or 'fused' in optimizer or 'foreach' in optimizer:
        return optim_wrapper
    from mmengine.registry import OPTIMIZERS
    optimizer_type = optimizer.get('type')
    if isinstance(optimizer_type, str):
        optimizer_type = OPTIMIZERS.get(optimizer_type)
    if not supports_fused(optimizer_type):
        return optim_wrapper
    optim_wrapper = copy.deepcopy(optim_wrapper)
    optim_wrapper['optimizer']['fused'] = True
    return optim_wrapper
