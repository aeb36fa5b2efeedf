"""``norm_cfg`` types that MMDetection's configs name and mmcv-lite lacks."""
from typing import Optional

from torch import nn
from torch.distributed import ProcessGroup

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError

#: mmcv's SyncBatchNorm statistics modes.
STATS_MODES = ('default', 'N')


@MODELS.register_module(name='MMSyncBN')
class MMSyncBN(nn.SyncBatchNorm):
    """mmcv's ``MMSyncBN`` (``mmcv.ops.SyncBatchNorm``, a compiled op) on torch's SyncBatchNorm.

    The state_dict keys (``weight``, ``bias``, ``running_mean``,
    ``running_var``, ``num_batches_tracked``) and the module name that
    ``build_norm_layer`` gives it (``bn``) are mmcv's, so MMDetection's
    checkpoints load. Outside a distributed run (or in eval mode) it is
    plain BatchNorm. In a run, torch averages the statistics of the ranks
    weighted by their sample counts: ``stats_mode='N'`` in mmcv's terms,
    and the same as mmcv's ``'default'`` when every rank has as many samples.

    Args:
        num_features (int): Channels.
        eps (float): Added to the variance. Defaults to 1e-5.
        momentum (float): Running statistics momentum. Defaults to 0.1.
        affine (bool): Learn a scale and shift. Defaults to True.
        track_running_stats (bool): Keep running statistics. Defaults to True.
        group (ProcessGroup, optional): Ranks to synchronise; all by default.
        stats_mode (str): 'default' or 'N' (see above).
    """

    def __init__(self,
                 num_features: int,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 affine: bool = True,
                 track_running_stats: bool = True,
                 group: Optional[ProcessGroup] = None,
                 stats_mode: str = 'default') -> None:
        if stats_mode not in STATS_MODES:
            raise AssertionValueError(f'MMSyncBN: stats_mode must be one of {STATS_MODES}, got '
                                      f'{stats_mode!r}')
        super().__init__(num_features, eps=eps, momentum=momentum, affine=affine,
                         track_running_stats=track_running_stats, process_group=group)
        self.stats_mode = stats_mode
