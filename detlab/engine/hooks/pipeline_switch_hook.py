"""PipelineSwitchHook: a second training pipeline from a given epoch on (RTMDet and
YOLOX drop Mosaic and MixUp for their last epochs)."""
from typing import Sequence

from mmcv.transforms import Compose
from mmengine.hooks import Hook

from detlab.registry import HOOKS


def _dataset_with_pipeline(dataset):
    """The dataset whose ``pipeline`` the loader's samples go through: the loader's own,
    or the one inside wrappers that keep it as ``.dataset`` (e.g. ``RepeatDataset``)."""
    while not hasattr(dataset, 'pipeline') and hasattr(dataset, 'dataset'):
        dataset = dataset.dataset
    if not hasattr(dataset, 'pipeline'):
        raise TypeError(f'PipelineSwitchHook: the training dataset ({type(dataset).__name__}) '
                        'has no pipeline to switch')
    return dataset


@HOOKS.register_module()
class PipelineSwitchHook(Hook):
    """Replace the training dataset's pipeline by ``switch_pipeline`` before
    epoch ``switch_epoch`` (0-based, as ``runner.epoch``), as MMDetection's.

    The switch happens at the first training epoch at or after
    ``switch_epoch``, so a run resumed past it trains on the second pipeline
    too. With persistent workers the loader is made to start new workers, which
    copy the new pipeline.

    Args:
        switch_epoch (int): First epoch of the second pipeline.
        switch_pipeline (list[dict]): Transform configs of the second pipeline.
    """

    def __init__(self, switch_epoch: int, switch_pipeline: Sequence[dict]) -> None:
        if switch_epoch < 0:
            raise ValueError(f'PipelineSwitchHook: switch_epoch must be >= 0, got {switch_epoch}')
        self.switch_epoch = switch_epoch
        self.switch_pipeline = switch_pipeline
        self._restart_dataloader = False
        self._has_switched = False

    def before_train_epoch(self, runner) -> None:
        train_loader = runner.train_dataloader
        if runner.epoch >= self.switch_epoch and not self._has_switched:
            runner.logger.info(f'PipelineSwitchHook: the training pipeline switches at epoch '
                               f'{runner.epoch + 1}')
            _dataset_with_pipeline(train_loader.dataset).pipeline = Compose(self.switch_pipeline)
            if getattr(train_loader, 'persistent_workers', False) is True:
                # Persistent workers keep their copy of the dataset: drop the iterator so
                # that the next epoch starts new ones (DataLoader refuses the attribute
                # change while it counts as initialised).
                train_loader._DataLoader__initialized = False
                train_loader._iterator = None
                self._restart_dataloader = True
            self._has_switched = True
        elif self._restart_dataloader:
            train_loader._DataLoader__initialized = True
            self._restart_dataloader = False
