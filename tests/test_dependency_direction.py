"""The dependency direction: structures < utils < datasets, models, evaluation <
engine < apis < tools. Read from the source (every import statement, at module
level or inside a function), so a lazy import cannot hide a wrong edge."""
import ast
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest

from helpers import REPO_ROOT

PACKAGE = REPO_ROOT / 'detlab'
#: Packages below the engine, and what none of their modules may import.
BELOW_ENGINE = ('structures', 'utils', 'datasets', 'models', 'evaluation')
ABOVE_THEM = ('detlab.engine', 'detlab.apis')
#: register_all_modules() imports every part of detlab to register it: its job.
REGISTERS_EVERYTHING = ('detlab.utils.setup_env', 'register_all_modules')


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def imports(path: Path) -> Iterator[Tuple[str, Optional[str]]]:
    """(imported module, enclosing function name or None) for each import in ``path``."""
    name = module_name(path)
    package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                functions.setdefault(id(inner), node.name)
    for node in ast.walk(tree):
        function = functions.get(id(node))
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, function
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:  # `from detlab import engine` imports detlab.engine
                yield f'{target}.{alias.name}' if target == 'detlab' else target, function


def modules_of(package: str):
    return sorted((PACKAGE / package).rglob('*.py'))


@pytest.mark.parametrize('package', BELOW_ENGINE)
def test_nothing_below_engine_imports_engine_or_apis(package):
    wrong = []
    for path in modules_of(package):
        for target, function in imports(path):
            if (module_name(path), function) == REGISTERS_EVERYTHING:
                continue
            if '.'.join(target.split('.')[:2]) in ABOVE_THEM:
                wrong.append(f'{module_name(path)} ({function or "module level"}) -> {target}')
    assert not wrong, wrong


def test_structures_import_nothing_else_of_detlab():
    wrong = [f'{module_name(path)} -> {target}' for path in modules_of('structures')
             for target, _ in imports(path)
             if target.startswith('detlab.') and not target.startswith('detlab.structures')]
    assert not wrong, wrong


def test_the_check_reads_relative_and_function_level_imports():
    """The walker resolves ``from ..x import y`` and sees imports inside functions."""
    found = list(imports(PACKAGE / 'evaluation' / 'metrics' / 'dump_det_results.py'))
    assert ('detlab.evaluation.functional.coco_format', None) in found
    assert ('detlab.utils.checkpoint', None) in found
    setup_env = dict(imports(PACKAGE / 'utils' / 'setup_env.py'))
    assert setup_env.get('detlab.engine.checkpoint') == 'register_all_modules'
