"""AmpOptimWrapper that also trains in bf16 without loss scaling, on GPUs and CPUs."""
from typing import Optional, Union

import torch
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from detlab.registry import OPTIM_WRAPPERS

#: ``--amp`` choices and the wrapper settings each one means.
AMP_MODES = {
    'fp16': dict(dtype='float16', loss_scale='dynamic'),
    'bf16': dict(dtype='bfloat16', loss_scale=None),
}


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's AmpOptimWrapper, plus ``loss_scale=None`` for bf16.

    bf16 has fp32's exponent range, so gradients do not underflow and need no
    loss scaling; without a scaler the step also skips the scaler's checks for
    infinite gradients (a device-to-host read per step). bf16 autocast runs on
    CPUs too, which mmengine's wrapper refuses. fp16 keeps mmengine's
    behaviour (a GradScaler, CUDA only). Checkpoints keep mmengine's format.

    Args:
        loss_scale (str | float | dict | None): As mmengine's; None for no
            scaling, allowed with ``dtype='bfloat16'`` only.
        dtype (str | torch.dtype, optional): Autocast dtype.
        **kwargs: mmengine's other AmpOptimWrapper arguments.
    """

    def __init__(self, loss_scale: Union[str, float, dict, None] = 'dynamic',
                 dtype: Optional[Union[str, torch.dtype]] = None, **kwargs) -> None:
        if isinstance(dtype, str):
            if dtype not in self.valid_dtypes:
                raise ValueError(f'AmpOptimWrapper dtype must be one of {self.valid_dtypes}, '
                                 f'got {dtype!r}.')
            dtype = getattr(torch, dtype)
        if loss_scale is not None:
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if dtype is not torch.bfloat16:
            raise ValueError(f'AmpOptimWrapper loss_scale=None needs dtype bfloat16 (fp16 '
                             f'gradients underflow without scaling), got dtype {dtype}.')
        kwargs.pop('use_fsdp', None)
        OptimWrapper.__init__(self, **kwargs)
        self.loss_scaler = None
        self._scale_update_param = None
        self.cast_dtype = dtype

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.backward(self, loss, **kwargs)
        return super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            return OptimWrapper.step(self, **kwargs)
        return super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            state_dict = {key: value for key, value in state_dict.items()
                          if key != 'loss_scaler'}
            return OptimWrapper.load_state_dict(self, state_dict)
        return super().load_state_dict(state_dict)
