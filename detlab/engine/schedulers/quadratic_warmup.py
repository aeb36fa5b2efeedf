"""Quadratic warm-up of a parameter (YOLOX's learning-rate warm-up), with
MMDetection's names: ``QuadraticWarmupParamScheduler``, ``QuadraticWarmupLR``,
``QuadraticWarmupMomentum``."""
from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.momentum_scheduler import MomentumSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from torch.optim import Optimizer

from detlab.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupParamScheduler(_ParamScheduler):
    """Raise a parameter from 0 to its base value along ``base * (t / T)^2``
    over the ``T = end - begin`` steps from ``begin``.

    Step ``t`` (0-based within the warm-up) adds ``base * (2t + 1) / T^2`` to
    the value, so after step t the value is ``base * ((t + 1) / T)^2``.

    Args:
        optimizer (Optimizer): The wrapped optimizer.
        param_name (str): The parameter of the param groups to schedule.
        begin (int): First step of the warm-up.
        end (int): Step at which it ends (must be finite).
        last_step (int): The step to resume from (-1: start).
        by_epoch (bool): Steps are epochs (else iterations).
        verbose (bool): Print each update.
    """

    def __init__(self, optimizer: Optimizer, param_name: str, begin: int = 0, end: int = INF,
                 last_step: int = -1, by_epoch: bool = True, verbose: bool = False) -> None:
        if end >= INF:
            raise ValueError(f'{type(self).__name__}: end must be finite: set it to the step '
                             'at which the warm-up ends')
        self.total_iters = end - begin
        super().__init__(optimizer=optimizer, param_name=param_name, begin=begin, end=end,
                         last_step=last_step, by_epoch=by_epoch, verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args, begin: int = 0, end: int = INF, by_epoch: bool = True,
                              epoch_length: int = None,
                              **kwargs) -> 'QuadraticWarmupParamScheduler':
        """The iteration-based scheduler of an epoch-based config
        (``convert_to_iter_based=True``)."""
        if not by_epoch:
            raise ValueError(f'{cls.__name__}: only by_epoch=True configs convert to iterations')
        if epoch_length is None or epoch_length <= 0:
            raise ValueError(f'{cls.__name__}: epoch_length must be a positive integer, got '
                             f'{epoch_length}')
        begin = begin * epoch_length
        if end != INF:
            end = end * epoch_length
        return cls(*args, begin=begin, end=end, by_epoch=False, **kwargs)

    def _get_value(self) -> list:
        step = 2 * self.last_step + 1
        if self.last_step == 0:
            return [base * step / self.total_iters**2 for base in self.base_values]
        return [group[self.param_name] + base * step / self.total_iters**2
                for base, group in zip(self.base_values, self.optimizer.param_groups)]


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupLR(LRSchedulerMixin, QuadraticWarmupParamScheduler):
    """Quadratic warm-up of the learning rate; see :class:`QuadraticWarmupParamScheduler`."""


@PARAM_SCHEDULERS.register_module()
class QuadraticWarmupMomentum(MomentumSchedulerMixin, QuadraticWarmupParamScheduler):
    """Quadratic warm-up of the momentum; see :class:`QuadraticWarmupParamScheduler`."""
