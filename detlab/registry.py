"""detlab's registries.

Each one is a child of mmengine's root registry of the same kind, so a config
can name mmengine's own parts (``OptimWrapper``, ``IterTimerHook``, ...) and
mmcv's transforms beside detlab's. ``locations`` lets a registry import the
modules that fill it the first time it is asked for something, so any config
builds without manual imports.
"""
import contextlib
import difflib
import functools
import re
from typing import Callable, Iterator, Optional

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry as _MMEngineRegistry


class Registry(_MMEngineRegistry):
    """mmengine's Registry whose ``build`` names the closest known types.

    ``get`` and ``in`` keep mmengine's contract (None and False for an unknown
    name). Building an unknown ``type`` fails with a KeyError that names the
    registry and the closest names it (or its mmengine/mmcv parents) knows.
    mmengine's Runner builds through mmengine's root registries, which look
    names up in detlab's registries under ``default_scope='detlab'`` and fail
    with mmengine's message; :func:`close_name_hints` turns that message into
    this one (DetRunner builds inside it).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.build_func = self.with_close_names(self.build_func)

    def with_close_names(self, build_func: Callable) -> Callable:
        """Wrap ``build_func`` so an unknown ``type`` gets this registry's suggestions."""
        if getattr(build_func, 'suggests_for', None) is not None:
            return build_func

        @functools.wraps(build_func)
        def build(cfg, *args, **kwargs):
            try:
                return build_func(cfg, *args, **kwargs)
            except KeyError as error:
                type_name = cfg.get('type') if isinstance(cfg, dict) else None
                missing = f'{type_name} is not in the {self.scope}::{self.name} registry'
                if not isinstance(type_name, str) or not str(error).strip('"\'').startswith(
                        missing):
                    raise
                raise KeyError(self.unknown_name_message(type_name)) from None

        build.suggests_for = self
        return build

    def unknown_name_message(self, key: str) -> str:
        """What to say about an unknown ``key``: this registry and the closest names."""
        _, real_key = self.split_scope_key(key)
        known = self.known_names()
        close = difflib.get_close_matches(real_key, known, n=5, cutoff=0.5)
        if not close:
            close = [name for name in known if name.lower().startswith(real_key[:3].lower())][:5]
        hint = f' Closest known names: {", ".join(close)}.' if close else ''
        return (f"'{real_key}' is not in the {self.scope}::{self.name} registry "
                f'(nor in the mmengine/mmcv registries it inherits).{hint}')

    def known_names(self) -> list:
        """Every name this registry can build: its own and its ancestors'."""
        self.import_from_location()
        names, registry = set(), self
        while registry is not None:
            names.update(registry.module_dict)
            registry = registry.parent
        return sorted(names)


# Runners and their parts.
RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['detlab.engine'])
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS, locations=['detlab.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['detlab.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['detlab.engine.hooks'])

# Data: datasets, their samplers and the per-sample transforms.
DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['detlab.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['detlab.datasets.samplers'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['detlab.datasets.transforms'])

# Models: detectors, backbones, necks, heads, losses, data preprocessors.
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['detlab.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['detlab.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS, locations=['detlab.models'])
# Parts that heads use but that are not nn.Modules: prior generators,
# assigners, samplers, box coders, IoU calculators.
TASK_UTILS = Registry('task util', parent=MMENGINE_TASK_UTILS, locations=['detlab.models'])

# Optimisation.
OPTIMIZERS = Registry('optimizer', parent=MMENGINE_OPTIMIZERS, locations=['detlab.engine'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['detlab.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['detlab.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['detlab.engine'])

# Evaluation.
METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['detlab.evaluation'])
EVALUATOR = Registry('evaluator', parent=MMENGINE_EVALUATOR, locations=['detlab.evaluation'])

# Visualisation and logging.
VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=['detlab.visualization'])
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=['detlab.visualization'])
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMENGINE_LOG_PROCESSORS, locations=['detlab.engine'])


#: mmengine's message for a name that a registry (here, one of detlab's) lacks.
_MMENGINE_MISSING_NAME = re.compile(
    r'^(?P<key>\S+) is not in the (?P<scope>[\w.]+)::(?P<name>.+?) registry\. ')


def _detlab_registry(scope: str, name: str) -> Optional[Registry]:
    """detlab's registry called ``name`` in ``scope``, or None."""
    for registry in globals().values():
        if isinstance(registry, Registry) and (registry.scope, registry.name) == (scope, name):
            return registry
    return None


@contextlib.contextmanager
def close_name_hints() -> Iterator[None]:
    """Give an unknown type name built through mmengine's root registries
    detlab's message, with the closest known names.

    Only mmengine's "X is not in the detlab::Y registry" KeyError changes;
    every other error passes unchanged.
    """
    try:
        yield
    except KeyError as error:
        match = (_MMENGINE_MISSING_NAME.match(error.args[0])
                 if error.args and isinstance(error.args[0], str) else None)
        registry = match and _detlab_registry(match['scope'], match['name'])
        if registry is None:
            raise
        raise KeyError(registry.unknown_name_message(match['key'])) from None
