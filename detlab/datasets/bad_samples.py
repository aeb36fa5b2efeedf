"""What a dataset does with bad input: fail at once, or drop it and say so once.

By default (``skip_bad_samples=False``) a bad annotation or image stops the
run with an error that names the file and the annotation or image id. With
``skip_bad_samples=True`` the bad sample is dropped and counted, and one
summary warning per dataset lists the counts with a few examples. Drops that
MMDetection makes silently (boxes under one pixel, zero area, classes not
selected) are never errors; they are counted in the same summary.
"""
import warnings
from collections import defaultdict
from typing import Dict, Iterable, List

#: Examples named per reason in the summary warning.
MAX_EXAMPLES = 3


class BadSampleWarning(UserWarning):
    """Raised (as a warning) once per dataset for what its loading dropped."""


class BadInputError(ValueError):
    """A bad annotation or image, with the file and the id at fault."""


class BadSampleReport:
    """Counts what one dataset dropped while loading; raises where it must not drop.

    Args:
        dataset (str): The dataset's name and source, e.g.
            ``"CocoDataset('data/ann.json')"``, put at the front of messages.
        skip_bad_samples (bool): Drop bad input instead of failing.
    """

    def __init__(self, dataset: str, skip_bad_samples: bool) -> None:
        self.dataset = dataset
        self.skip_bad_samples = skip_bad_samples
        self.counts: Dict[str, int] = defaultdict(int)
        self.examples: Dict[str, List[str]] = defaultdict(list)

    def bad(self, reason: str, where: Iterable[str]) -> None:
        """Bad input at each of ``where``: raise at once, or count it when skipping.

        Args:
            reason (str): What is wrong and what would be valid.
            where (Iterable[str]): One entry per bad item, naming the file or
                id (e.g. ``"annotation id 7"``); nothing happens when empty.

        Raises:
            BadInputError: Unless skipping bad samples.
        """
        where = list(where)
        if not where:
            return
        if not self.skip_bad_samples:
            more = f' (and {len(where) - 1} more like it)' if len(where) > 1 else ''
            raise BadInputError(
                f'{self.dataset}: {where[0]}{more}: {reason}. Fix the data, or set '
                f'skip_bad_samples=True in the dataset config to drop such samples with '
                f'one summary warning.')
        self.dropped(reason, where)

    def dropped(self, reason: str, where: Iterable[str]) -> None:
        """Count items dropped (or fixed) for ``reason``; never an error."""
        where = list(where)
        if not where:
            return
        self.counts[reason] += len(where)
        room = MAX_EXAMPLES - len(self.examples[reason])
        self.examples[reason].extend(where[:max(room, 0)])

    def summary(self) -> str:
        """One line per reason: count, reason, examples; empty if nothing dropped."""
        lines = []
        for reason, count in self.counts.items():
            examples = ', '.join(self.examples[reason])
            more = ', ...' if count > len(self.examples[reason]) else ''
            lines.append(f'  {count} x {reason} (e.g. {examples}{more})')
        return '\n'.join(lines)

    def warn(self) -> None:
        """Emit the one summary warning, if anything was dropped."""
        summary = self.summary()
        if summary:
            warnings.warn(f'{self.dataset}, while loading:\n{summary}', BadSampleWarning,
                          stacklevel=2)
