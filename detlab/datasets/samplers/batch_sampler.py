"""Batches of images with the same orientation, so padding wastes little."""
from typing import Iterator, List

from torch.utils.data import BatchSampler, Sampler

from detlab.registry import DATA_SAMPLERS

#: Bucket ids: portrait images (w < h) and the rest (landscape or square).
PORTRAIT, LANDSCAPE = 0, 1


@DATA_SAMPLERS.register_module()
class AspectRatioBatchSampler(BatchSampler):
    """Group indices from ``sampler`` into batches of portrait or of landscape images.

    Each index goes to its orientation's bucket (from the dataset's
    ``get_data_info(idx)['width'/'height']``); a bucket is yielded when it holds
    ``batch_size`` indices. At the end of an epoch the leftovers of both
    buckets are batched together (mixed); with ``drop_last`` the last of
    those batches is dropped even when it is full, as MMDetection does.

    Args:
        sampler (Sampler): Index sampler with a ``dataset`` attribute (e.g.
            mmengine's ``DefaultSampler``).
        batch_size (int): Batch size, > 0.
        drop_last (bool): Drop the final short batch. Defaults to False.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False) -> None:
        if not isinstance(sampler, Sampler):
            raise TypeError(f'AspectRatioBatchSampler: sampler must be a torch Sampler, got '
                            f'{type(sampler).__name__}.')
        if not hasattr(sampler, 'dataset'):
            raise TypeError(f'AspectRatioBatchSampler: sampler {type(sampler).__name__} has no '
                            '`dataset` attribute to read image sizes from.')
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'AspectRatioBatchSampler: batch_size must be a positive int, got '
                             f'{batch_size!r}.')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[List[int]]:
        buckets: List[List[int]] = [[], []]
        for idx in self.sampler:
            info = self.sampler.dataset.get_data_info(idx)
            bucket = buckets[PORTRAIT if info['width'] < info['height'] else LANDSCAPE]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
        leftover = buckets[PORTRAIT] + buckets[LANDSCAPE]
        # As MMDetection: full batches from the mixed leftovers, then the last
        # chunk (even a full one) only without drop_last.
        while len(leftover) > self.batch_size:
            yield leftover[:self.batch_size]
            leftover = leftover[self.batch_size:]
        if leftover and not self.drop_last:
            yield leftover

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size
