"""NumClassCheckHook: stop before training when the head and the data disagree on classes."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from detlab.registry import HOOKS


def _is_class_agnostic(name: str, module) -> bool:
    """RPN heads score objectness (1 class) whatever the dataset's classes: the
    ``rpn_head`` of a two-stage detector, or the ``RPNHead`` of an ``RPN``."""
    from detlab.models.dense_heads import RPNHead
    return name.endswith('rpn_head') or isinstance(module, RPNHead)


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Compare every ``num_classes`` in the model with the dataset's ``classes``.

    A mismatch would silently train a classifier with wrong or missing
    outputs; it is caught before the first iteration (and before testing),
    naming both numbers and the config key to change. Class-agnostic RPN
    heads are not checked. A dataset without ``classes`` in its metainfo gets
    a warning, as in MMDetection, since nothing can be compared.
    """

    def _check(self, runner, mode: str) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataloader = runner.train_dataloader if mode == 'train' else runner.val_dataloader
        dataset = dataloader.dataset
        classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
        if classes is None:
            runner.logger.warning(
                f'The {mode} dataset {type(dataset).__name__} has no `classes` in its metainfo, '
                'so the num_classes of the heads cannot be checked: set '
                'metainfo=dict(classes=(...)) and check that it matches num_classes.')
            return
        if isinstance(classes, str):
            raise TypeError(f"The dataset's classes must be a tuple of names, got the string "
                            f"{classes!r}; write classes=('{classes}',) for one class.")
        for name, module in model.named_modules():
            num_classes = getattr(module, 'num_classes', None)
            if num_classes is None or _is_class_agnostic(name, module):
                continue
            if num_classes != len(classes):
                raise ValueError(
                    f'model.{name}.num_classes = {num_classes}, but the {mode} dataset has '
                    f'{len(classes)} classes {tuple(classes)}. Set the num_classes of '
                    f'model.{name} to {len(classes)}, or pick the classes with '
                    'dataset metainfo=dict(classes=(...)).')

    def before_train(self, runner) -> None:
        self._check(runner, 'train')

    def before_val_epoch(self, runner) -> None:
        self._check(runner, 'val')
