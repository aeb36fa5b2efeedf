"""CachedMosaic and CachedMixUp: Mosaic/MixUp partners drawn from a cache of recent samples.

They work in an ordinary pipeline (no MultiImageMixDataset): each call adds
the sample to the cache (dropping a random or the oldest entry past
``max_cached_images``) and mixes once the cache is big enough.
"""
import copy
from typing import List

from mmcv.transforms.utils import cache_randomness
from numpy import random

from detlab.registry import TRANSFORMS
from detlab.structures.bbox import autocast_box_type

from .mix import Mosaic, MixUp


def push_to_cache(cache: List[dict], results: dict, max_size: int, random_pop: bool) -> None:
    cache.append(copy.deepcopy(results))
    if len(cache) > max_size:
        cache.pop(random.randint(0, len(cache) - 1) if random_pop else 0)


@TRANSFORMS.register_module()
class CachedMosaic(Mosaic):
    """Mosaic whose three partners come from a cache of recent samples.

    Mixes only once the cache holds more than 4 samples.

    Args:
        *args, **kwargs: :class:`Mosaic` arguments.
        max_cached_images (int): Cache size, at least 4. Defaults to 40.
        random_pop (bool): Drop a random entry when full (else the oldest).
    """

    def __init__(self, *args, max_cached_images: int = 40, random_pop: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if max_cached_images < 4:
            raise ValueError(f'CachedMosaic: max_cached_images must be >= 4, got '
                             f'{max_cached_images}.')
        self.results_cache: List[dict] = []
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop

    @cache_randomness
    def get_indexes(self, cache: list) -> List[int]:
        return [random.randint(0, len(cache) - 1) for _ in range(3)]

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        push_to_cache(self.results_cache, results, self.max_cached_images, self.random_pop)
        if len(self.results_cache) <= 4 or random.uniform(0, 1) > self.prob:
            return results
        others = [copy.deepcopy(self.results_cache[i])
                  for i in self.get_indexes(self.results_cache)]
        return self._mosaic(results, others)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, max_cached_images={self.max_cached_images}, '
                f'random_pop={self.random_pop})')


@TRANSFORMS.register_module()
class CachedMixUp(MixUp):
    """MixUp whose partner comes from a cache of recent samples.

    Mixes only once the cache holds more than 1 sample, with probability ``prob``.

    Args:
        img_scale, ratio_range, flip_ratio, pad_val, max_iters,
            bbox_clip_border: As :class:`MixUp`.
        max_cached_images (int): Cache size, at least 2. Defaults to 20.
        random_pop (bool): Drop a random entry when full (else the oldest).
        prob (float): Probability of mixing. Defaults to 1.
    """

    def __init__(self, *args, max_cached_images: int = 20, random_pop: bool = True,
                 prob: float = 1.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if max_cached_images < 2:
            raise ValueError(f'CachedMixUp: max_cached_images must be >= 2, got '
                             f'{max_cached_images}.')
        if not 0 <= prob <= 1:
            raise ValueError(f'CachedMixUp: prob must lie in [0, 1], got {prob}.')
        self.results_cache: List[dict] = []
        self.max_cached_images = max_cached_images
        self.random_pop = random_pop
        self.prob = prob

    @cache_randomness
    def get_indexes(self, cache: list) -> int:
        for _ in range(self.max_iters):
            index = random.randint(0, len(cache) - 1)
            if len(cache[index]['gt_bboxes']) != 0:
                break
        return index

    @autocast_box_type()
    def transform(self, results: dict) -> dict:
        push_to_cache(self.results_cache, results, self.max_cached_images, self.random_pop)
        if len(self.results_cache) <= 1 or random.uniform(0, 1) > self.prob:
            return results
        retrieve = copy.deepcopy(self.results_cache[self.get_indexes(self.results_cache)])
        if len(retrieve['gt_bboxes']) == 0:
            return results
        return self._mixup(results, retrieve)

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, max_cached_images={self.max_cached_images}, '
                f'random_pop={self.random_pop}, prob={self.prob})')
