"""Loading a config the way every detlab tool does.

:func:`read_config` reads a file with its ``_base_`` chain and merges
``--cfg-options``; a syntax error names the file and line where it is (the
config or one of its ``_base_`` files), and an override must have the type
of the number or bool it replaces. :func:`load_config` adds what a run
needs: the launcher, the work dir and the default registry scope, made
current so that whatever the tool builds finds detlab's parts.
:class:`CfgOptionsAction` parses ``--cfg-options KEY=VALUE ...``.
"""
import argparse
import ast
import os.path as osp
from typing import Any, List, Optional

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope

from .config_types import check_config_types
from .setup_env import DETLAB_SCOPE, adopt_default_scope

#: Returned by :func:`current_value` for a key the config does not have.
MISSING = object()


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` that refuses an item without ``=`` with a
    usage error naming it (mmengine's ends in a ValueError traceback)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        for item in values or ():
            if '=' not in item or item.startswith('='):
                raise argparse.ArgumentError(
                    self, f'{item!r} is not KEY=VALUE: write e.g. train_cfg.max_iters=100 '
                    "(lists as 'key=[a,b]', strings as key=text).")
        super().__call__(parser, namespace, values, option_string)


def base_files(path: str, tree: ast.Module) -> List[str]:
    """The ``_base_`` files a parsed config names (literal strings only), as paths.

    Paths with mmengine's ``{{ }}`` variables or ``package::`` prefixes are
    left out: they are not plain files beside the config.
    """
    names: list = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id == '_base_'
                for target in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            names += [value] if isinstance(value, str) else list(value)
    return [osp.join(osp.dirname(path), name) for name in names
            if isinstance(name, str) and '{{' not in name and '::' not in name]


def find_syntax_error(path: str, seen: Optional[set] = None) -> Optional[SyntaxError]:
    """The first syntax error in ``path`` or the ``_base_`` files it inherits
    (depth first), with its file name and line; None when they all parse."""
    seen = set() if seen is None else seen
    path = osp.abspath(path)
    if path in seen or not osp.isfile(path):
        return None
    seen.add(path)
    with open(path, encoding='utf-8') as file:
        source = file.read()
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as error:
        return error
    for base in base_files(path, tree):
        error = find_syntax_error(base, seen)
        if error is not None:
            return error
    return None


def syntax_error_message(error: SyntaxError) -> str:
    """``File "x.py", line 3: '(' was never closed`` and the line itself."""
    text = f'\n    {error.text.rstrip()}' if error.text else ''
    return f'File "{error.filename}", line {error.lineno}: {error.msg}{text}'


def current_value(cfg: Any, key: str) -> Any:
    """The value at dotted ``key`` (list items by index), or :data:`MISSING`."""
    value = cfg
    for part in key.split('.'):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.lstrip('-').isdigit() \
                and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def override_type_error(key: str, old: Any, new: Any) -> Optional[str]:
    """Why ``new`` cannot replace the number or bool ``old`` at ``key``; None if it can.

    A number (int or float) takes a number, since many keys take either (a count
    or a fraction, as FedAvg's ``clients_per_round``); a bool takes a bool; None
    is always accepted (it switches a setting off). Other values (strings, lists,
    dicts, None in the config) take anything.
    """
    if new is None or old is None:
        return None
    if isinstance(old, bool):
        expected, ok = 'a bool (True or False)', isinstance(new, bool)
    elif isinstance(old, (int, float)):
        expected, ok = 'a number', isinstance(new, (int, float)) and not isinstance(new, bool)
    else:
        return None
    if ok:
        return None
    return (f'--cfg-options {key}={new!r}: {key} is {old!r} in the config, so it takes '
            f'{expected}, not {type(new).__name__} {new!r}.')


def merge_cfg_options(cfg: Config, cfg_options: Optional[dict]) -> None:
    """Merge ``--cfg-options`` into ``cfg`` after checking their types.

    Raises:
        ValueError: An override does not fit the number or bool it replaces,
            or cannot be merged (a key below a value that is not a dict).
    """
    if not cfg_options:
        return
    problems = [override_type_error(key, current_value(cfg._cfg_dict, key), new)
                for key, new in cfg_options.items()]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValueError('\n'.join(problems))
    try:
        cfg.merge_from_dict(cfg_options)
    except (TypeError, KeyError, IndexError, AttributeError) as error:
        keys = ' '.join(f'{key}={value!r}' for key, value in cfg_options.items())
        raise ValueError(f'--cfg-options {keys} cannot be merged into the config: '
                         f'{error}') from None


def read_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """Read ``path`` with its ``_base_`` chain and merge ``cfg_options``.

    Raises:
        FileNotFoundError: ``path`` is not a file.
        SyntaxError: The config or one of its ``_base_`` files does not parse;
            the message names that file and the line.
        ValueError: See :func:`merge_cfg_options`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as error:
        found = find_syntax_error(path) or error
        raise SyntaxError(f'Syntax error in the config {path}: '
                          f'{syntax_error_message(found)}') from None
    merge_cfg_options(cfg, cfg_options)
    return cfg


def load_config(path: str, cfg_options: Optional[dict] = None, launcher: str = 'none',
                work_dir: Optional[str] = None, check_train_parts: bool = True) -> Config:
    """Read ``path`` with its ``_base_`` chain, apply ``--cfg-options`` and defaults.

    The config's default scope (``'detlab'`` for a config without one or an
    MMDetection config) becomes the current one, so anything the tool then
    builds, through detlab's registries or mmengine's, finds detlab's parts.
    Every ``type`` of the top-level parts is checked against its registry
    first, so a misspelled name stops the tool at once with the closest names;
    a tool that does not train passes ``check_train_parts=False``, so a config
    whose training parts detlab lacks still tests and evaluates.

    Args:
        path (str): Config file.
        cfg_options (dict, optional): Overrides, as parsed by :class:`CfgOptionsAction`.
        launcher (str): ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        work_dir (str, optional): Overrides the config's ``work_dir``; by default
            ``./work_dirs/<config file name>``.
    """
    cfg = read_config(path, cfg_options)
    cfg.launcher = launcher
    adopt_default_scope(cfg)
    init_default_scope(cfg.get('default_scope', DETLAB_SCOPE))
    check_config_types(cfg, check_train_parts)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg
