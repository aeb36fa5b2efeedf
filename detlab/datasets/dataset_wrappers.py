"""Dataset wrappers MMDetection adds to mmengine's: ConcatDataset, MultiImageMixDataset.

``RepeatDataset`` and ``ClassBalancedDataset`` are mmengine's, reached through
the registry's parent.
"""
import collections.abc
import copy
from typing import List, Optional, Sequence, Union

from mmengine.dataset import BaseDataset
from mmengine.dataset import ConcatDataset as MMENGINE_ConcatDataset
from mmengine.dataset import force_full_init

from detlab.registry import DATASETS, TRANSFORMS

from .bad_samples import SKIPPED_SAMPLES_KEY, attach_skip_records


def _build_dataset(dataset: Union[BaseDataset, dict], owner: str) -> BaseDataset:
    if isinstance(dataset, dict):
        return DATASETS.build(dataset)
    if isinstance(dataset, BaseDataset):
        return dataset
    raise TypeError(f'{owner}: each dataset must be a config dict or a BaseDataset, got '
                    f'{type(dataset).__name__}.')


@DATASETS.register_module()
class ConcatDataset(MMENGINE_ConcatDataset):
    """Several datasets one after another, as MMDetection's ``ConcatDataset``.

    Where the datasets' metainfo differ outside ``ignore_keys``, ``metainfo``
    is the list of each dataset's metainfo instead of an error; after a full
    initialisation each metainfo carries ``cumulative_sizes``.

    Args:
        datasets (Sequence[BaseDataset | dict]): The datasets or their configs.
        lazy_init (bool): Defer loading until first use. Defaults to False.
        ignore_keys (str | list[str], optional): Metainfo keys allowed to
            differ (e.g. VOC's ``dataset_type``).
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 lazy_init: bool = False,
                 ignore_keys: Union[str, List[str], None] = None) -> None:
        if not datasets:
            raise ValueError('ConcatDataset: datasets is empty; give at least one dataset.')
        self.datasets: List[BaseDataset] = [_build_dataset(d, 'ConcatDataset') for d in datasets]
        if isinstance(ignore_keys, str):
            ignore_keys = [ignore_keys]
        if ignore_keys is not None and not isinstance(ignore_keys, list):
            raise TypeError(f'ConcatDataset: ignore_keys must be a str or a list, got '
                            f'{type(ignore_keys).__name__}.')
        self.ignore_keys = list(ignore_keys or [])
        metainfos = [dataset.metainfo for dataset in self.datasets]
        keys = set().union(*(meta.keys() for meta in metainfos)) - set(self.ignore_keys)
        self._metainfo_is_shared = all(
            all(key in meta and meta[key] == metainfos[0].get(key) for key in keys)
            for meta in metainfos)
        self._metainfo = metainfos[0] if self._metainfo_is_shared else metainfos
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    def full_init(self) -> None:
        """Initialise every dataset, then record ``cumulative_sizes`` in the metainfo."""
        if self._fully_initialized:
            return
        super().full_init()
        metainfos = [self._metainfo] if self._metainfo_is_shared else self._metainfo
        for meta in metainfos:
            meta['cumulative_sizes'] = self.cumulative_sizes

    def get_dataset_source(self, idx: int) -> int:
        """Index of the dataset that sample ``idx`` comes from."""
        dataset_idx, _ = self._get_ori_dataset_idx(idx)
        return dataset_idx


@DATASETS.register_module()
class MultiImageMixDataset:
    """Runs a pipeline of mixing transforms (Mosaic, MixUp, ...) over a dataset.

    Each sample is the wrapped dataset's output, then every transform of
    ``pipeline`` in turn; a transform with ``get_indexes(dataset)`` first gets
    the other samples it mixes in as ``results['mix_results']``. A transform
    returning None is retried, up to ``max_refetch`` times.

    Args:
        dataset (BaseDataset | dict): The wrapped dataset (its own pipeline
            usually only loads).
        pipeline (Sequence[dict]): Transform configs.
        skip_type_keys (Sequence[str], optional): Transform types to skip;
            changed during training by ``update_skip_type_keys`` (YOLOX's
            mode-switch hook).
        max_refetch (int): Retries of a transform that returns None. Defaults to 15.
        lazy_init (bool): Defer the wrapped dataset's loading. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[BaseDataset, dict],
                 pipeline: Sequence[dict],
                 skip_type_keys: Optional[Sequence[str]] = None,
                 max_refetch: int = 15,
                 lazy_init: bool = False) -> None:
        if not isinstance(pipeline, collections.abc.Sequence):
            raise TypeError(f'MultiImageMixDataset: pipeline must be a list of transform '
                            f'configs, got {type(pipeline).__name__}.')
        self._skip_type_keys = self._checked_skip_keys(skip_type_keys)
        self.pipeline, self.pipeline_types = [], []
        for transform in pipeline:
            if not isinstance(transform, dict):
                raise TypeError(f'MultiImageMixDataset: each pipeline step must be a config '
                                f'dict, got {type(transform).__name__}.')
            self.pipeline_types.append(transform['type'])
            self.pipeline.append(TRANSFORMS.build(transform))
        self.dataset = _build_dataset(dataset, 'MultiImageMixDataset')
        self._metainfo = self.dataset.metainfo
        if hasattr(self.dataset, 'flag'):
            self.flag = self.dataset.flag
        self.num_samples = len(self.dataset)
        self.max_refetch = max_refetch
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @staticmethod
    def _checked_skip_keys(skip_type_keys: Optional[Sequence[str]]) -> Optional[List[str]]:
        if skip_type_keys is None:
            return None
        if not all(isinstance(key, str) for key in skip_type_keys):
            raise TypeError(f'MultiImageMixDataset: skip_type_keys must be transform type '
                            f'names (str), got {list(skip_type_keys)!r}.')
        return list(skip_type_keys)

    @property
    def metainfo(self) -> dict:
        """The wrapped dataset's metainfo (a copy)."""
        return copy.deepcopy(self._metainfo)

    def full_init(self) -> None:
        """Fully initialise the wrapped dataset."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        self._ori_len = len(self.dataset)
        self._fully_initialized = True

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The wrapped dataset's data info of sample ``idx``."""
        return self.dataset.get_data_info(idx)

    @force_full_init
    def __len__(self) -> int:
        return self.num_samples

    def _mix_results(self, transform) -> list:
        for _ in range(self.max_refetch):
            indexes = transform.get_indexes(self.dataset)
            if not isinstance(indexes, collections.abc.Sequence):
                indexes = [indexes]
            mix_results = [copy.deepcopy(self.dataset[index]) for index in indexes]
            if None not in mix_results:
                return mix_results
        raise RuntimeError(f'MultiImageMixDataset: the wrapped dataset returned None for the '
                           f'images {type(transform).__name__} mixes in, {self.max_refetch} '
                           'times; check its pipeline and data.')

    def __getitem__(self, idx: int) -> dict:
        results = copy.deepcopy(self.dataset[idx])
        for transform, transform_type in zip(self.pipeline, self.pipeline_types):
            if self._skip_type_keys is not None and transform_type in self._skip_type_keys:
                continue
            if hasattr(transform, 'get_indexes'):
                results['mix_results'] = self._mix_results(transform)
                # Skips made while loading the mixed-in images travel on with this sample.
                skipped = [record for mixed in results['mix_results']
                           for record in mixed.pop(SKIPPED_SAMPLES_KEY, [])]
                if skipped:
                    attach_skip_records(results, skipped)
            for _ in range(self.max_refetch):
                updated = transform(copy.deepcopy(results))
                if updated is not None:
                    results = updated
                    break
            else:
                raise RuntimeError(f'MultiImageMixDataset: {transform_type} returned None '
                                   f'{self.max_refetch} times for sample {idx}; check the '
                                   'pipeline.')
            results.pop('mix_results', None)
        return results

    def update_skip_type_keys(self, skip_type_keys: Sequence[str]) -> None:
        """Skip these transform types from now on (called by hooks)."""
        self._skip_type_keys = self._checked_skip_keys(skip_type_keys)
