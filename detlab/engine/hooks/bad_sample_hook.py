"""BadSampleHook: one summary of the training samples skipped in every worker and rank."""
import warnings
from typing import Optional

from mmengine.dist import all_gather_object, is_main_process
from mmengine.hooks import Hook

from detlab.datasets.bad_samples import (BadSampleWarning, SkipTally, describe_skip,
                                         pop_skipped_samples)
from detlab.registry import HOOKS


@HOOKS.register_module()
class BadSampleHook(Hook):
    """Count the samples that datasets with ``skip_bad_samples=True`` skipped while training.

    A dataset skips an image that fails to load in a DataLoader worker and
    draws another; the skip's record comes to the main process on a later
    sample's metainfo (``skipped_samples``). This hook pops the records from
    every training batch, before the model sees it, logs the first skip of
    the run when it arrives, and when training ends gathers the counts from
    every rank and gives one ``BadSampleWarning`` (and log line) on rank 0
    naming how many samples were skipped, why, and a few of them.

    DetRunner adds it to the hooks unless the config has it.
    """

    priority = 'VERY_HIGH'  # pop the records before other hooks look at the batch

    def __init__(self) -> None:
        self.tally = SkipTally()

    def before_train(self, runner) -> None:
        self.tally = SkipTally()

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        if not isinstance(data_batch, dict):
            return
        records = pop_skipped_samples(data_batch.get('data_samples'))
        if not records:
            return
        if self.tally.total == 0:
            runner.logger.warning(
                f"{records[0]['dataset']}: skipped {describe_skip(records[0])}; another sample "
                'was drawn in its place (skip_bad_samples=True). Later skips are counted and '
                'summarised when training ends.')
        self.tally.add(records)

    def after_train(self, runner) -> None:
        tally = SkipTally()
        for other in all_gather_object(self.tally):  # called on every rank
            tally.merge(other)
        summary = tally.summary()
        if summary and is_main_process():
            runner.logger.warning(summary)
            warnings.warn(summary, BadSampleWarning)
