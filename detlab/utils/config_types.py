"""Checking a config's ``type`` names against their registries before anything is built.

A misspelled type otherwise surfaces late (after the data has loaded) and,
for some parts, without a hint: mmengine's optimizer-wrapper constructor
looks the optimizer up with ``get`` and ends in ``TypeError: None is not a
callable object``. :func:`check_config_types` walks the parts a runner
builds from the top-level keys and names the key, the unknown type and the
closest names the registry knows.
"""
from typing import Any, Iterator, List, Tuple

from detlab import registry as detlab_registry
from detlab.registry import Registry


def iter_dicts(value: Any) -> Iterator[Tuple[str, dict]]:
    """(suffix, dict) for ``value`` itself if it is a dict, or for each dict in a list."""
    if isinstance(value, dict):
        yield '', value
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield f'[{index}]', item


def typed_parts(key: str, value: Any, registry: Registry) -> Iterator[Tuple[str, Any, Registry]]:
    """(config key, type, registry) of every dict with a ``type`` in ``value``."""
    for suffix, part in iter_dicts(value):
        if 'type' in part and '_scope_' not in part:
            yield f'{key}{suffix}.type', part['type'], registry


def dataset_parts(key: str, dataset: Any) -> Iterator[Tuple[str, Any, Registry]]:
    """A dataset config, the datasets it wraps and their pipelines' transforms."""
    for suffix, part in iter_dicts(dataset):
        here = f'{key}{suffix}'
        yield from typed_parts(here, part, detlab_registry.DATASETS)
        yield from typed_parts(f'{here}.pipeline', part.get('pipeline'),
                               detlab_registry.TRANSFORMS)
        for inner in ('dataset', 'datasets'):
            yield from dataset_parts(f'{here}.{inner}', part.get(inner))


#: Top-level keys only training builds; tools that only test or evaluate may skip them.
TRAIN_ONLY_KEYS = ('optim_wrapper', 'param_scheduler', 'train_cfg', 'train_dataloader')


def config_parts(cfg: Any) -> Iterator[Tuple[str, Any, Registry]]:
    """(config key, type, registry) of the parts a runner builds from ``cfg``."""
    r = detlab_registry
    model = cfg.get('model')
    yield from typed_parts('model', model, r.MODELS)
    if isinstance(model, dict):
        for name in ('data_preprocessor', 'backbone', 'neck', 'bbox_head', 'rpn_head',
                     'roi_head'):
            yield from typed_parts(f'model.{name}', model.get(name), r.MODELS)
    wrapper = cfg.get('optim_wrapper')
    yield from typed_parts('optim_wrapper', wrapper, r.OPTIM_WRAPPERS)
    if isinstance(wrapper, dict):
        yield from typed_parts('optim_wrapper.optimizer', wrapper.get('optimizer'),
                               r.OPTIMIZERS)
        if 'constructor' in wrapper:
            yield 'optim_wrapper.constructor', wrapper['constructor'], \
                r.OPTIM_WRAPPER_CONSTRUCTORS
    yield from typed_parts('param_scheduler', cfg.get('param_scheduler'), r.PARAM_SCHEDULERS)
    for name, hook in (cfg.get('default_hooks') or {}).items():
        yield from typed_parts(f'default_hooks.{name}', hook, r.HOOKS)
    yield from typed_parts('custom_hooks', cfg.get('custom_hooks'), r.HOOKS)
    visualizer = cfg.get('visualizer')
    yield from typed_parts('visualizer', visualizer, r.VISUALIZERS)
    if isinstance(visualizer, dict):
        yield from typed_parts('visualizer.vis_backends', visualizer.get('vis_backends'),
                               r.VISBACKENDS)
    yield from typed_parts('log_processor', cfg.get('log_processor'), r.LOG_PROCESSORS)
    for loop in ('train_cfg', 'val_cfg', 'test_cfg'):
        yield from typed_parts(loop, cfg.get(loop), r.LOOPS)
    if 'runner_type' in cfg:
        yield 'runner_type', cfg['runner_type'], r.RUNNERS
    for evaluator in ('val_evaluator', 'test_evaluator'):
        yield from typed_parts(evaluator, cfg.get(evaluator), r.METRICS)
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader')
        if isinstance(loader, dict):
            yield from dataset_parts(f'{split}_dataloader.dataset', loader.get('dataset'))
            for sampler in ('sampler', 'batch_sampler'):
                yield from typed_parts(f'{split}_dataloader.{sampler}', loader.get(sampler),
                                       r.DATA_SAMPLERS)


def unknown_types(cfg: Any, train_parts: bool = True) -> List[str]:
    """One message per part of ``cfg`` whose ``type`` its registry does not know.

    Types that are not plain names (classes, ``scope.Name`` strings, parts with
    ``_scope_``) are left to the registries, which resolve them at build time.
    ``train_parts=False`` leaves out the parts under :data:`TRAIN_ONLY_KEYS`.
    """
    problems = []
    for key, type_name, registry in config_parts(cfg):
        if not isinstance(type_name, str) or '.' in type_name:
            continue
        if not train_parts and key.startswith(TRAIN_ONLY_KEYS):
            continue
        if registry.get(type_name) is None:
            problems.append(f'{key}: {registry.unknown_name_message(type_name)}')
    return problems


def check_config_types(cfg: Any, train_parts: bool = True) -> None:
    """Raise a KeyError naming every unknown ``type`` in ``cfg``'s top-level parts
    (with ``train_parts=False``, those a test or evaluation builds).

    Call it in the config's default scope (:func:`detlab.utils.load_config`
    does), which is where the runner looks the names up.
    """
    problems = unknown_types(cfg, train_parts)
    if problems:
        raise KeyError(' | '.join(problems))
