"""BaseDetDataset: what detlab's detection datasets share on top of mmengine's."""
import os.path as osp
import warnings
from typing import Any, List, Optional

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from detlab.registry import DATASETS
from detlab.utils.malloc import keep_image_buffers
from .bad_samples import (BadSampleReport, BadSampleWarning, SkipTally, attach_skip_records,
                          describe_skip, skip_record)


@DATASETS.register_module()
class BaseDetDataset(BaseDataset):
    """Base of the detection datasets: filtering, bad-input policy, class lookups.

    Takes mmengine ``BaseDataset``'s arguments (``ann_file``, ``metainfo``,
    ``data_root``, ``data_prefix``, ``filter_cfg``, ``indices``,
    ``serialize_data``, ``pipeline``, ``test_mode``, ``lazy_init``,
    ``max_refetch``) plus the ones below.

    ``filter_cfg=dict(filter_empty_gt=True, min_size=32)`` drops, outside
    ``test_mode``, images without ground truth and images whose shorter side
    is under ``min_size``. A training set that loading and filtering leave
    empty is an error naming the file and the filter, never an empty epoch.

    Args:
        seg_map_suffix (str): Suffix of semantic segmentation maps, used
            with ``data_prefix['seg']``. Defaults to ``'.png'``.
        backend_args (dict, optional): mmengine file backend arguments.
        file_client_args (dict, optional): Removed in MMDetection 3.0.0rc6;
            refused with a pointer to ``backend_args``.
        skip_bad_samples (bool): Drop bad annotations and images (counted in
            one summary warning; unreadable images in training are skipped
            and another sample drawn) instead of failing at once naming the
            file and id. Defaults to False.
        **kwargs: ``mmengine.dataset.BaseDataset`` arguments.
    """

    def __init__(self,
                 *args,
                 seg_map_suffix: str = '.png',
                 backend_args: Optional[dict] = None,
                 file_client_args: Optional[dict] = None,
                 skip_bad_samples: bool = False,
                 **kwargs) -> None:
        if file_client_args is not None:
            raise ValueError(f'{type(self).__name__}: file_client_args was replaced by '
                             'backend_args in MMDetection 3.0.0rc6; rename the key.')
        self.seg_map_suffix = seg_map_suffix
        self.backend_args = backend_args
        self.skip_bad_samples = bool(skip_bad_samples)
        self._bad_samples: Optional[BadSampleReport] = None
        self._num_skipped_at_runtime = 0
        self._pending_skips: List[dict] = []  # skip records not yet sent with a sample
        keep_image_buffers()  # the pipeline reuses freed image memory (detlab/utils/malloc.py)
        super().__init__(*args, **kwargs)

    def __setstate__(self, state: dict) -> None:
        # A DataLoader worker started by 'spawn' (or forkserver) unpickles the
        # dataset without running __init__, and inherits no malloc settings.
        keep_image_buffers()
        self.__dict__.update(state)

    @property
    def name(self) -> str:
        """The class and annotation file, as messages name the dataset."""
        return f"{type(self).__name__}('{self.ann_file}')"

    @property
    def bad_samples(self) -> BadSampleReport:
        """What the current load dropped; raises on bad input unless skipping."""
        if self._bad_samples is None:
            self._bad_samples = BadSampleReport(self.name, self.skip_bad_samples)
        return self._bad_samples

    def full_init(self) -> None:
        """Load, drop missing images when skipping, filter, check, subset, serialise."""
        if self._fully_initialized:
            return
        self._bad_samples = None
        self.data_list = self.load_data_list()
        if self.skip_bad_samples:
            self._drop_missing_images()
        num_loaded = len(self.data_list)
        self.data_list = self.filter_data()
        self.bad_samples.warn()
        if not self.test_mode:
            self._check_not_empty(num_loaded)
        if self._indices is not None:
            self.data_list = self._get_unserialized_subset(self._indices)
        if self.serialize_data:
            self.data_bytes, self.data_address = self._serialize_data()
        self._fully_initialized = True

    def _drop_missing_images(self) -> None:
        """Drop images whose local file is absent (cheap: one stat per image)."""
        def missing(path: str) -> bool:
            is_local = self.backend_args is None and '://' not in path
            return is_local and not osp.isfile(path)

        absent = [info for info in self.data_list if missing(info['img_path'])]
        self.bad_samples.bad("has no image file at img_path (data_root + data_prefix['img'] + "
                             'file_name)', (f"image '{info['img_path']}'" for info in absent))
        if absent:
            absent_ids = {id(info) for info in absent}
            self.data_list = [info for info in self.data_list if id(info) not in absent_ids]

    def has_gt(self, data_info: dict) -> bool:
        """Whether ``filter_empty_gt`` keeps this image: it has an instance."""
        return bool(data_info['instances'])

    def filter_data(self) -> List[dict]:
        """Apply ``filter_cfg`` outside ``test_mode``; logs what it removed.

        Returns:
            list[dict]: The kept part of ``self.data_list``.
        """
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        kept, self._num_without_gt, self._num_too_small = [], 0, 0
        for info in self.data_list:
            if filter_empty_gt and not self.has_gt(info):
                self._num_without_gt += 1
            elif min(info['width'], info['height']) < min_size:
                self._num_too_small += 1
            else:
                kept.append(info)
        if len(kept) < len(self.data_list):
            print_log(f'{self.name}: filter_cfg={dict(self.filter_cfg)} kept {len(kept)} of '
                      f'{len(self.data_list)} images ({self._num_without_gt} without ground '
                      f'truth, {self._num_too_small} with a side under min_size).',
                      logger='current')
        return kept

    def _check_not_empty(self, num_loaded: int) -> None:
        """A training set must hold images: an empty one divides by zero or hangs."""
        if self.data_list:
            return
        if num_loaded == 0:
            raise ValueError(f'{self.name}: the training set is empty: the annotation file '
                             'lists no usable image.')
        classes = self.metainfo.get('classes')
        raise ValueError(
            f'{self.name}: the training set is empty: filter_cfg={dict(self.filter_cfg)} '
            f'removed all {num_loaded} images ({self._num_without_gt} without ground truth '
            f'of the classes {tuple(classes) if classes else None}, {self._num_too_small} with '
            f'a side under min_size). Check that metainfo classes name the categories of the '
            'annotation file, or relax filter_cfg.')

    def prepare_data(self, idx: int) -> Any:
        """Run the pipeline; when skipping bad samples in training, a failure draws another.

        A failure is recorded (see :mod:`detlab.datasets.bad_samples`) and
        the record travels on the next sample this process prepares, under
        the metainfo key ``skipped_samples``, for ``BadSampleHook`` to count
        across workers and ranks. A sample that cannot carry it (a pipeline
        without ``PackDetInputs``) makes this process warn instead.

        Returns:
            Any: The pipeline's output, or None (mmengine then draws another
            index) for a sample whose loading failed under ``skip_bad_samples``.
        """
        if not self.skip_bad_samples or self.test_mode:
            return super().prepare_data(idx)
        try:
            data = super().prepare_data(idx)
        except Exception as error:  # noqa: BLE001  (the config asked to skip bad samples)
            self._num_skipped_at_runtime += 1
            self._pending_skips.append(
                skip_record(self.name, idx, self.get_data_info(idx).get('img_path'), error))
            return None
        if data is not None and self._pending_skips:
            if not attach_skip_records(data, self._pending_skips):
                for record in self._pending_skips:
                    warnings.warn(f'{self.name}: skipped {describe_skip(record)} '
                                  f'({self._num_skipped_at_runtime} skipped so far in this '
                                  'process).', BadSampleWarning)
            self._pending_skips = []
        return data

    def __getitem__(self, idx: int) -> Any:
        try:
            return super().__getitem__(idx)
        except Exception as error:
            # mmengine gives up after max_refetch draws without saying why they failed.
            if not self._pending_skips or 'Cannot find valid' not in str(error):
                raise
            tally = SkipTally()
            tally.add(self._pending_skips)
            self._pending_skips = []
            raise RuntimeError(f'{self.name}: no loadable sample in {self.max_refetch + 1} '
                               f'draws from index {idx}.\n{tally.summary()}') from error

    def _serialize_data(self):
        # mmengine cannot serialise an empty list (an empty test set).
        if not self.data_list:
            return np.zeros(0, np.uint8), np.zeros(0, np.int64)
        return super()._serialize_data()

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels (contiguous, 0..K-1) of the instances of image ``idx``.

        Named as in MMDetection, where class-balanced wrappers call it.

        Args:
            idx (int): Index in the dataset.

        Returns:
            list[int]: One label per instance.
        """
        return [instance['bbox_label'] for instance in self.get_data_info(idx)['instances']]
