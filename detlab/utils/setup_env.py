"""Registering detlab's modules and choosing the default registry scope."""
import datetime
import logging
import warnings

from mmengine import DefaultScope
from mmengine.logging import print_log

#: MMDetection configs say ``default_scope = 'mmdet'``; detlab answers for it.
MMDET_SCOPE = 'mmdet'
DETLAB_SCOPE = 'detlab'
#: The runner detlab's configs (and the configs it adopts) run under.
DETLAB_RUNNER = 'DetRunner'


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every detlab module that registers something, and register
    detlab's checkpoint loader with mmengine (safe ``weights_only`` loading,
    offline resolution of ``torchvision://``, ``open-mmlab://`` and
    ``http(s)://`` addresses: :mod:`detlab.engine.checkpoint`).

    Nothing in mmengine is replaced: DetRunner and detlab's hooks carry the
    rest of detlab's run behaviour. This is the one place below
    ``detlab.engine`` that imports it: registering everything is its job.

    Args:
        init_default_scope (bool): Also make ``'detlab'`` the current default
            scope, so ``MODELS.build(...)`` from mmengine's root registries
            finds detlab's parts. Defaults to True.
    """
    import detlab.datasets  # noqa: F401
    import detlab.engine  # noqa: F401
    import detlab.evaluation  # noqa: F401
    import detlab.models  # noqa: F401
    import detlab.visualization  # noqa: F401
    from detlab.engine.checkpoint import register_checkpoint_schemes
    register_checkpoint_schemes()

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != DETLAB_SCOPE:
        if current is not None:
            warnings.warn(f'The current default scope "{current.scope_name}" is not '
                          f'"{DETLAB_SCOPE}"; detlab switches to a new "{DETLAB_SCOPE}" scope.')
        name = f'detlab-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name=DETLAB_SCOPE)


def adopt_default_scope(cfg) -> None:
    """Make detlab's registries serve the config: the default scope of a config
    without one, and the ``'mmdet'`` scope of an MMDetection config.

    detlab keeps MMDetection's type names, config keys and state_dict keys for
    the models it supports, so a config written for MMDetection builds here.
    Without ``default_scope`` mmengine's Runner would look names up in
    mmengine's own registries and miss detlab's (``DetLocalVisualizer``, ...).
    Such a config also runs under ``runner_type='DetRunner'`` (as detlab's
    own ``default_runtime.py`` sets), so it gets detlab's checkpoint checks,
    atomic saves and CPU multi-process set-up. A ``type`` that names the
    ``'mmdet'`` scope (``'mmdet.QuadraticWarmupLR'`` in YOLOX's configs) names
    detlab's part of that name. The config is changed in place, once, at the
    boundary (the tools).
    """
    scope = cfg.get('default_scope')
    if scope == MMDET_SCOPE:
        cfg.default_scope = DETLAB_SCOPE
        print_log(
            "default_scope='mmdet': detlab serves this MMDetection config with its own "
            'MMDetection-compatible modules (same type names, config keys and state_dict keys).',
            logger='current', level=logging.INFO)
    elif scope is None:
        cfg.default_scope = DETLAB_SCOPE
    if scope in (None, MMDET_SCOPE) and cfg.get('runner_type') is None:
        cfg.runner_type = DETLAB_RUNNER
    for key in list(cfg.keys()):
        _drop_mmdet_type_scope(cfg[key])


def _drop_mmdet_type_scope(node) -> None:
    """Replace every ``type='mmdet.NAME'`` inside ``node`` (dicts and lists,
    nested) by ``type='NAME'``."""
    if isinstance(node, dict):
        type_name = node.get('type')
        if isinstance(type_name, str) and type_name.startswith(MMDET_SCOPE + '.'):
            node['type'] = type_name[len(MMDET_SCOPE) + 1:]
        children = node.values()
    elif isinstance(node, (list, tuple)):
        children = node
    else:
        return
    for child in children:
        _drop_mmdet_type_scope(child)
