"""What a dataset does with bad input: fail at once, or drop it and say so once.

By default (``skip_bad_samples=False``) a bad annotation or image stops the
run with an error that names the file and the annotation or image id. With
``skip_bad_samples=True`` the bad sample is dropped and counted, and one
summary warning per dataset lists the counts with a few examples. Drops that
MMDetection makes silently (boxes under one pixel, zero area, classes not
selected) are never errors; they are counted in the same summary.

Images that fail to load while training are skipped at run time, in the
DataLoader's worker processes, and another sample is drawn in their place.
Each skip is recorded (:func:`skip_record`) and rides to the main process on
the next sample the worker returns, under the metainfo key
``skipped_samples``; there ``BadSampleHook`` pops the records
(:func:`pop_skipped_samples`), adds them up in a :class:`SkipTally` over all
workers and ranks, and gives one summary warning when training ends.
"""
import warnings
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Sequence, Set, Tuple

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


#: Key of the skip records in a packed sample's metainfo, and in a pipeline's
#: results dict before packing (``PackDetInputs`` moves them to the metainfo).
SKIPPED_SAMPLES_KEY = 'skipped_samples'
#: Characters of an error message kept in a skip record.
MAX_ERROR_CHARS = 300


def skip_record(dataset: str, index: int, img_path: Any, error: BaseException) -> dict:
    """What is kept of one sample skipped at run time: small, and picklable."""
    message = f'{type(error).__name__}: {error}'
    if len(message) > MAX_ERROR_CHARS:
        message = message[:MAX_ERROR_CHARS] + '...'
    return dict(dataset=dataset, index=int(index), img_path=str(img_path),
                error_type=type(error).__name__, error=message)


def describe_skip(record: dict) -> str:
    """``"sample 4 ('imgs/bad.png'): FileNotFoundError: ..."``."""
    return f"sample {record['index']} ('{record['img_path']}'): {record['error']}"


def attach_skip_records(data: Any, records: List[dict]) -> bool:
    """Put ``records`` on a prepared sample for the main process; False if it cannot carry them.

    A packed sample (``data_samples`` with metainfo) takes them in its
    metainfo; a results dict not packed yet (the inner dataset of
    ``MultiImageMixDataset``) under :data:`SKIPPED_SAMPLES_KEY`.
    """
    if not isinstance(data, dict):
        return False
    data_sample = data.get('data_samples')
    if data_sample is not None:
        if not hasattr(data_sample, 'set_metainfo'):
            return False
        earlier = data_sample.metainfo.get(SKIPPED_SAMPLES_KEY, [])
        data_sample.set_metainfo({SKIPPED_SAMPLES_KEY: list(earlier) + list(records)})
        return True
    data[SKIPPED_SAMPLES_KEY] = list(data.get(SKIPPED_SAMPLES_KEY, [])) + list(records)
    return True


def pop_skipped_samples(data_samples: Sequence[Any]) -> List[dict]:
    """The skip records carried by a batch's data samples, removed from them."""
    records = []
    for data_sample in data_samples or ():
        metainfo = getattr(data_sample, 'metainfo', None)
        if metainfo and SKIPPED_SAMPLES_KEY in metainfo:
            records.extend(metainfo[SKIPPED_SAMPLES_KEY])
            delattr(data_sample, SKIPPED_SAMPLES_KEY)
    return records


class SkipTally:
    """Samples skipped at run time, counted by dataset and error type, with a few examples.

    A bad image is skipped every time it is drawn, so the tally keeps both
    the number of skips and the number of different samples skipped.
    """

    def __init__(self) -> None:
        self.counts: Dict[Tuple[str, str], int] = defaultdict(int)
        self.indices: Dict[Tuple[str, str], Set[int]] = defaultdict(set)
        self.examples: Dict[Tuple[str, str], List[str]] = defaultdict(list)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def _count(self, key: Tuple[str, str], count: int, indices: Iterable[int],
               examples: Iterable[Tuple[int, str]]) -> None:
        self.counts[key] += count
        self.indices[key].update(indices)
        shown = {index for index, _ in self.examples[key]}
        for index, text in examples:
            if len(self.examples[key]) < MAX_EXAMPLES and index not in shown:
                self.examples[key].append((index, text))
                shown.add(index)

    def add(self, records: Iterable[dict]) -> None:
        for record in records:
            self._count((record['dataset'], record['error_type']), 1, [record['index']],
                        [(record['index'], describe_skip(record))])

    def merge(self, other: 'SkipTally') -> None:
        """Add another process's tally to this one."""
        for key, count in other.counts.items():
            self._count(key, count, other.indices[key], other.examples[key])

    def summary(self) -> str:
        """The summary warning's text; empty when nothing was skipped."""
        if not self.counts:
            return ''
        lines = [f'Training skipped {self.total} sample(s) whose loading failed, each replaced '
                 'by another draw (skip_bad_samples=True):']
        for key, count in sorted(self.counts.items()):
            dataset, error_type = key
            examples = '; '.join(text for _, text in self.examples[key])
            more = '; ...' if len(self.indices[key]) > len(self.examples[key]) else ''
            lines.append(f'  {dataset}: {count} x {error_type}, from {len(self.indices[key])} '
                         f'different sample(s) (e.g. {examples}{more})')
        return '\n'.join(lines)
