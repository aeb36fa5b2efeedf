"""ResNet ``plugins`` in MMDetection's form: layers inserted inside residual blocks.

A plugin entry is ``dict(cfg=dict(type=...), position='after_conv1' |
'after_conv2' | 'after_conv3', stages=(bool, ...))``: the layer built from
``cfg`` (with ``in_channels`` of that position) runs on the block's
activations after that conv (and its norm and activation), in every block
of the stages marked True (all stages when ``stages`` is absent). Its
module is named as mmcv names plugins: the snake-case class name (or the
class's ``_abbr_``) plus ``cfg['postfix']``, e.g. ``layer2.0.se_block``.
"""
from typing import List, Optional, Sequence

from mmcv.cnn.bricks.plugin import infer_abbr
from torch import Tensor, nn

from detlab.registry import MODELS
from detlab.structures.errors import AssertionValueError

#: Where a plugin can sit in a block; BasicBlock has no conv3.
PLUGIN_POSITIONS = ('after_conv1', 'after_conv2', 'after_conv3')
_PLUGIN_KEYS = ('cfg', 'position', 'stages')


def check_plugins(plugins: Optional[Sequence[dict]], num_stages: int) -> None:
    """Fail clearly on a malformed ``plugins`` list.

    Args:
        plugins (list[dict], optional): ResNet's ``plugins``.
        num_stages (int): Stages of the backbone (length of ``stages``).
    """
    if plugins is None:
        return
    if not isinstance(plugins, (list, tuple)):
        raise AssertionValueError(f'ResNet: plugins must be a list of dicts, got {plugins!r}')
    for i, plugin in enumerate(plugins):
        where = f'ResNet: plugins[{i}]'
        if not isinstance(plugin, dict) or 'cfg' not in plugin or 'position' not in plugin:
            raise AssertionValueError(f"{where} must be a dict with 'cfg' and 'position', got "
                                      f"{plugin!r}")
        unknown = set(plugin) - set(_PLUGIN_KEYS)
        if unknown:
            raise AssertionValueError(f'{where} has unknown keys {sorted(unknown)}; valid keys are '
                                      f'{_PLUGIN_KEYS}')
        if not isinstance(plugin['cfg'], dict) or 'type' not in plugin['cfg']:
            raise AssertionValueError(f"{where}['cfg'] must be a dict with a 'type', got "
                                      f"{plugin['cfg']!r}")
        if plugin['position'] not in PLUGIN_POSITIONS:
            raise AssertionValueError(f"{where}['position'] must be one of {PLUGIN_POSITIONS}, got "
                                      f"{plugin['position']!r}")
        stages = plugin.get('stages')
        if stages is not None and len(stages) != num_stages:
            raise AssertionValueError(f"{where}['stages'] needs one bool per stage (num_stages="
                                      f'{num_stages}), got {tuple(stages)}')


def make_stage_plugins(plugins: Optional[Sequence[dict]],
                       stage_idx: int) -> Optional[List[dict]]:
    """The plugins of one stage, without their ``stages`` key.

    Args:
        plugins (list[dict], optional): ResNet's (checked) ``plugins``.
        stage_idx (int): The stage, 0-based.

    Returns:
        list[dict] | None: ``dict(cfg=..., position=...)`` for each plugin
        of the stage, in the configured order; None without ``plugins``.
    """
    if plugins is None:
        return None
    stage_plugins = []
    for plugin in plugins:
        stages = plugin.get('stages')
        if stages is None or stages[stage_idx]:
            stage_plugins.append(dict(cfg=plugin['cfg'], position=plugin['position']))
    return stage_plugins


def add_block_plugins(block: nn.Module, plugins: Optional[Sequence[dict]], position: str,
                      in_channels: int) -> List[str]:
    """Build the plugins of one position as children of ``block``.

    Args:
        block (nn.Module): The residual block that owns them.
        plugins (list[dict], optional): The block's ``dict(cfg, position)``
            entries.
        position (str): One of ``PLUGIN_POSITIONS``.
        in_channels (int): Channels at that position.

    Returns:
        list[str]: Names of the added modules, in order.
    """
    names = []
    for plugin in plugins or ():
        if plugin['position'] != position:
            continue
        cfg = dict(plugin['cfg'])
        postfix = str(cfg.pop('postfix', ''))
        layer = MODELS.build(cfg, default_args=dict(in_channels=in_channels))
        name = infer_abbr(type(layer)) + postfix
        if hasattr(block, name):
            raise AssertionValueError(f'{type(block).__name__}: two plugins would both be named '
                                      f"{name!r}; give them different cfg['postfix']")
        block.add_module(name, layer)
        names.append(name)
    return names


def forward_plugins(block: nn.Module, x: Tensor, names: Sequence[str]) -> Tensor:
    """Run ``block``'s plugins ``names`` on ``x`` one after the other."""
    for name in names:
        x = getattr(block, name)(x)
    return x
