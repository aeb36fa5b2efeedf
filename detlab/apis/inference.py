"""A detector from a config and a checkpoint, run on images: ``init_detector``,
``inference_detector`` and the config names they accept (``list_models``)."""
import copy
import difflib
import os.path as osp
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config, ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import load_checkpoint
from torch import nn

from detlab.registry import DATASETS, MODELS
from detlab.structures import DetDataSample
from detlab.utils import (adopt_default_scope, merge_cfg_options, read_config,
                          register_all_modules)
from detlab.utils.fast_path import use_channels_last
from detlab.visualization.palette import get_palette

#: detlab's configs: ``configs/<model>/<name>.py`` beside the package.
CONFIG_ROOT = Path(__file__).resolve().parents[2] / 'configs'
#: Folders of ``configs/`` that hold pieces of configs, not models (``common/``: MMDetection's
#: shared training recipes, such as the large-scale-jitter schedules).
PARTIAL_CONFIG_DIRS = ('_base_', 'common')
#: Endings of config names that are pieces too (a model's test-time augmentation).
PARTIAL_CONFIG_SUFFIXES = ('_tta',)
#: ``palette=`` names that mean "the palette of this dataset" (MMDetection's choices).
DATASET_PALETTES = {'coco': 'CocoDataset', 'voc': 'VOCDataset', 'citys': 'CityscapesDataset'}
#: Transforms that read annotations, which images given for inference do not have.
ANNOTATION_LOADERS = ('LoadAnnotations',)

ConfigLike = Union[str, Path, Config, ConfigDict, dict]
ImageLike = Union[str, Path, np.ndarray]


def model_configs(config_root: Union[str, Path] = CONFIG_ROOT) -> Dict[str, Path]:
    """Every model config under ``config_root``, by name (file name without ``.py``).

    Raises:
        ValueError: Two configs share a name (both paths are given).
    """
    found: Dict[str, Path] = {}
    for path in sorted(Path(config_root).rglob('*.py')):
        if (any(part in PARTIAL_CONFIG_DIRS for part in path.relative_to(config_root).parts)
                or path.stem.endswith(PARTIAL_CONFIG_SUFFIXES)):
            continue
        if path.stem in found:
            raise ValueError(f'Two configs are named {path.stem!r}: {found[path.stem]} and {path}.')
        found[path.stem] = path
    return found


def list_models(config_root: Union[str, Path] = CONFIG_ROOT,
                with_weights: bool = False) -> Union[List[str], Dict[str, Optional[str]]]:
    """Names of detlab's model configs, e.g. ``'retinanet_r50_fpn_1x_coco'``.

    A name works wherever a config path does (``init_detector``,
    ``DetInferencer``, ``demo/image_demo.py``); ``DetInferencer(name)`` without
    ``weights`` loads the name's trained weights (see :mod:`detlab.apis.model_zoo`).

    Args:
        config_root (str | Path): Where the configs are. Defaults to detlab's.
        with_weights (bool): Return ``{name: checkpoint URL or None}`` instead.
    """
    from .model_zoo import model_zoo_weights
    names = sorted(model_configs(config_root))
    return {name: model_zoo_weights(name) for name in names} if with_weights else names


def load_model_config(config: ConfigLike) -> Config:
    """A :class:`Config` from a config file, a config name or a config object (copied)."""
    if isinstance(config, (Config, ConfigDict, dict)):
        return copy.deepcopy(config if isinstance(config, Config) else Config(config))
    if not isinstance(config, (str, Path)):
        raise TypeError(f'config must be a file path, a config name or a Config, '
                        f'got {type(config).__name__}.')
    config = str(config)
    if osp.isfile(config):
        return read_config(config)
    if config.endswith(('.pth', '.pt')):
        raise ValueError(f'{config!r} looks like a checkpoint, not a config: give the config '
                         'file (or name) and the checkpoint as weights. detlab does not run '
                         'the config text stored inside a checkpoint.')
    configs = model_configs()
    if config in configs:
        return read_config(str(configs[config]))
    close = difflib.get_close_matches(config, list(configs), n=5, cutoff=0.5)
    hint = f' Close names: {close}.' if close else f' Known names: {sorted(configs)}.'
    raise FileNotFoundError(f'{config!r} is neither a config file nor the name of a detlab '
                            f'config (list them with DetInferencer.list_models()).{hint}')


def default_device() -> str:
    return 'cuda:0' if torch.cuda.is_available() else 'cpu'


def config_dataset_meta(cfg: Config) -> dict:
    """Classes and palette of the config's test dataset (its class's METAINFO
    updated by the config's ``metainfo``); empty when the config names none."""
    dataset_cfg = cfg.get('test_dataloader', {}).get('dataset', {})
    meta = {}
    if 'type' in dataset_cfg:
        meta.update(getattr(DATASETS.get(dataset_cfg['type']), 'METAINFO', {}))
    meta.update(dataset_cfg.get('metainfo', None) or {})
    return meta


def resolve_palette(palette: str, dataset_meta: dict) -> list:
    """RGB colours per class for MMDetection's ``palette`` argument.

    Args:
        palette (str): ``'none'`` (the dataset's own palette, else random),
            ``'random'``, a dataset name (``'coco'``, ``'voc'``, ``'citys'``)
            or anything :func:`get_palette` takes (a colour name).
        dataset_meta (dict): With ``classes`` and maybe ``palette``.
    """
    num_classes = len(dataset_meta.get('classes', ())) or 1
    if palette == 'none':
        return get_palette(dataset_meta.get('palette', 'random'), num_classes)
    if palette in DATASET_PALETTES:
        dataset_type = DATASET_PALETTES[palette]
        try:
            dataset_palette = DATASETS.get(dataset_type).METAINFO['palette']
        except KeyError:
            raise ValueError(f"palette={palette!r} needs {dataset_type}, which detlab lacks; "
                             "use 'none', 'random', 'coco' or a colour name.") from None
        return get_palette(dataset_palette, num_classes)
    return get_palette(palette, num_classes)


def init_detector(config: ConfigLike,
                  checkpoint: Optional[str] = None,
                  palette: str = 'none',
                  device: Optional[str] = None,
                  cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a detector from a config and load a checkpoint, ready for inference.

    Args:
        config: A config file, a config name (see :func:`list_models`) or a Config.
        checkpoint (str, optional): Checkpoint path (or a URL / model-zoo name
            already in the torch hub cache); read with ``weights_only=True``
            and detlab's allow-list. None leaves the weights random (warned).
        palette (str): Box colours: ``'none'`` (the checkpoint's dataset
            palette), ``'random'``, ``'coco'``, ``'voc'`` or a colour name.
        device (str, optional): ``'cpu'``, ``'cuda:0'``, ...; defaults to the
            first GPU when there is one, else the CPU. On CUDA the model's
            weights go to channels_last unless the config says ``channels_last=False``.
        cfg_options (dict, optional): Overrides merged into the config.

    Returns:
        nn.Module: The detector in eval mode, with ``cfg`` (the merged config)
        and ``dataset_meta`` (``classes``, ``palette``) set.
    """
    register_all_modules()
    cfg = load_model_config(config)
    merge_cfg_options(cfg, cfg_options)
    adopt_default_scope(cfg)
    if 'model' not in cfg:
        raise KeyError(f'The config {config!r} has no "model" to build.')
    if cfg.model.get('backbone', {}).get('init_cfg') is not None:
        cfg.model.backbone.init_cfg = None  # the checkpoint (or nothing) gives the weights
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    dataset_meta = config_dataset_meta(cfg)
    if checkpoint is None:
        warnings.warn('No checkpoint given: the detector has random weights.')
    else:
        meta = load_checkpoint(model, checkpoint, map_location='cpu').get('meta', {})
        if 'dataset_meta' in meta:
            dataset_meta = dict(meta['dataset_meta'])
        elif 'CLASSES' in meta:  # MMDetection 2.x checkpoints
            dataset_meta = dict(classes=meta['CLASSES'])
    dataset_meta['palette'] = resolve_palette(palette, dataset_meta)
    model.dataset_meta = dataset_meta
    model.cfg = cfg
    device = device or default_device()
    model.to(device)
    if use_channels_last(cfg.get('channels_last', None), device):
        model.to(memory_format=torch.channels_last)
    model.eval()
    return model


#: Input size (H, W) when the test pipeline names none (MMDeploy's default).
FALLBACK_INPUT_SHAPE = (800, 1344)


def default_input_shape(cfg: Config) -> Tuple[int, int]:
    """(H, W) of the test pipeline's ``Resize`` scale (given as (W, H)), rounded
    up to the data preprocessor's ``pad_size_divisor``."""
    divisor = cfg.model.get('data_preprocessor', {}).get('pad_size_divisor', 1) or 1
    steps = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
    for step in steps:
        if step['type'].split('.')[-1] == 'Resize' and 'scale' in step:
            width, height = step['scale']
            return (-(-height // divisor) * divisor, -(-width // divisor) * divisor)
    return FALLBACK_INPUT_SHAPE


def build_test_pipeline(cfg: Config, from_array: bool = False,
                        max_pixels: Union[int, None, str] = 'config') -> Compose:
    """The config's test pipeline without annotation loading, for images from
    files or, with ``from_array``, from (H, W, 3) BGR arrays.

    ``max_pixels`` other than ``'config'`` replaces ``LoadImageFromFile``'s
    pixel limit (an int, or None for no limit)."""
    try:
        steps = copy.deepcopy(list(cfg.test_dataloader.dataset.pipeline))
    except AttributeError:
        raise KeyError('The config has no test_dataloader.dataset.pipeline to prepare '
                       'images with.') from None
    steps = [step for step in steps if step['type'].split('.')[-1] not in ANNOTATION_LOADERS]
    if max_pixels != 'config':
        steps = [dict(step, max_pixels=max_pixels)
                 if step['type'].split('.')[-1] == 'LoadImageFromFile' else step
                 for step in steps]
    if from_array:
        loaders = [i for i, step in enumerate(steps)
                   if step['type'].split('.')[-1] == 'LoadImageFromFile']
        if not loaders:
            raise KeyError('The test pipeline has no LoadImageFromFile to replace with '
                           'LoadImageFromNDArray for array inputs.')
        steps[loaders[0]] = dict(steps[loaders[0]], type='LoadImageFromNDArray')
    return Compose(steps)


def inference_detector(model: nn.Module, imgs: Union[ImageLike, Sequence[ImageLike]],
                       test_pipeline: Optional[Compose] = None
                       ) -> Union[DetDataSample, List[DetDataSample]]:
    """Run ``model`` (from :func:`init_detector`) on one image or a list.

    Args:
        model (nn.Module): The detector, with ``cfg`` set.
        imgs: An image path, an (H, W, 3) BGR uint8 array, or a list of them.
        test_pipeline (Compose, optional): Defaults to the config's test pipeline.

    Returns:
        DetDataSample or list: ``pred_instances`` with ``bboxes`` (N, 4) in the
        original image's pixels, ``scores`` (N,), ``labels`` (N,); a list when
        ``imgs`` is a list.
    """
    is_batch = isinstance(imgs, (list, tuple))
    images = list(imgs) if is_batch else [imgs]
    results = []
    for index, image in enumerate(images):
        is_array = isinstance(image, np.ndarray)
        pipeline = test_pipeline or build_test_pipeline(model.cfg, from_array=is_array)
        results.append(run_on_batch(model, [pipeline(image_inputs(image, index))])[0])
    return results if is_batch else results[0]


def image_inputs(image: ImageLike, img_id: int) -> dict:
    """The pipeline's first results dict for a path or an array."""
    if isinstance(image, np.ndarray):
        return dict(img=image, img_id=img_id)
    if isinstance(image, (str, Path)):
        return dict(img_path=str(image), img_id=img_id)
    raise TypeError(f'An image must be a path or a numpy array, got {type(image).__name__}.')


@torch.no_grad()
def run_on_batch(model: nn.Module, packed: List[dict]) -> List[DetDataSample]:
    """``model.test_step`` on pipeline outputs (``inputs``, ``data_samples``)."""
    return model.test_step(pseudo_collate(packed))
