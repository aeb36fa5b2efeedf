"""YOLOXModeSwitchHook: YOLOX's last epochs train without Mosaic, RandomAffine
and MixUp, and with an extra L1 box loss."""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detlab.registry import HOOKS


@HOOKS.register_module()
class YOLOXModeSwitchHook(Hook):
    """Before the 0-based epoch e with ``e + 1 >= max_epochs - num_last_epochs``
    (MMDetection's condition, so ``num_last_epochs + 1`` epochs train in the
    second mode), tell the training dataset (``MultiImageMixDataset``) to skip
    the ``skip_type_keys`` transforms and turn on the head's ``use_l1``.

    The switch happens at the first training epoch past that point, so a run
    resumed in its last epochs switches too. With persistent workers the loader
    is made to start new workers, which copy the dataset's new setting.

    Args:
        num_last_epochs (int): Epochs at the end trained in the second mode.
        skip_type_keys (Sequence[str]): Transform types to skip from then on.
    """

    def __init__(self, num_last_epochs: int = 15,
                 skip_type_keys: Sequence[str] = ('Mosaic', 'RandomAffine', 'MixUp')) -> None:
        if num_last_epochs < 0:
            raise ValueError('YOLOXModeSwitchHook: num_last_epochs must be >= 0, got '
                             f'{num_last_epochs}')
        self.num_last_epochs = num_last_epochs
        self.skip_type_keys = skip_type_keys
        self._restart_dataloader = False
        self._has_switched = False

    def before_train_epoch(self, runner) -> None:
        train_loader = runner.train_dataloader
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        switch_now = runner.epoch + 1 >= runner.max_epochs - self.num_last_epochs
        if switch_now and not self._has_switched:
            dataset = train_loader.dataset
            if not hasattr(dataset, 'update_skip_type_keys'):
                raise TypeError('YOLOXModeSwitchHook: the training dataset '
                                f'({type(dataset).__name__}) cannot skip transforms; wrap it '
                                "in type='MultiImageMixDataset'")
            runner.logger.info(f'YOLOXModeSwitchHook: from epoch {runner.epoch + 1} no '
                               f'{", ".join(self.skip_type_keys)} and an L1 box loss')
            dataset.update_skip_type_keys(self.skip_type_keys)
            if getattr(train_loader, 'persistent_workers', False) is True:
                # Persistent workers keep their copy of the dataset: drop the iterator so
                # that the next epoch starts new ones (DataLoader refuses the attribute
                # change while it counts as initialised).
                train_loader._DataLoader__initialized = False
                train_loader._iterator = None
                self._restart_dataloader = True
            detector = model.detector if hasattr(model, 'detector') else model
            detector.bbox_head.use_l1 = True
            self._has_switched = True
        elif self._restart_dataloader:
            train_loader._DataLoader__initialized = True
            self._restart_dataloader = False
