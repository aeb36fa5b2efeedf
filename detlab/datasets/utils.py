"""Helpers on dataset configs."""
from typing import List, Sequence

from mmcv.transforms import LoadImageFromFile as MMCV_LoadImageFromFile

from detlab.registry import TRANSFORMS
from .transforms import LoadAnnotations


def get_loading_pipeline(pipeline: Sequence[dict]) -> List[dict]:
    """Keep only the steps of ``pipeline`` that load the image and the annotations.

    Used where the ground truth is wanted without augmentation (e.g. to draw
    or analyse a dataset).

    Args:
        pipeline (Sequence[dict]): Transform configs.

    Returns:
        list[dict]: The image-loading and annotation-loading configs, in order.

    Raises:
        ValueError: When the pipeline does not hold one of each.
    """
    loading = []
    for cfg in pipeline:
        transform_cls = TRANSFORMS.get(cfg['type'])
        if isinstance(transform_cls, type) and issubclass(
                transform_cls, (MMCV_LoadImageFromFile, LoadAnnotations)):
            loading.append(cfg)
    if len(loading) != 2:
        raise ValueError(f'get_loading_pipeline: expected one image-loading and one '
                         f'annotation-loading step, found {[c["type"] for c in loading]} in '
                         f'{[c["type"] for c in pipeline]}.')
    return loading
