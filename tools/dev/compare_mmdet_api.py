"""Compare the call signatures of the classes and functions detlab shares with MMDetection 3.3.

Not run by CI. For each package below, every class or function that MMDetection exports and
detlab exports under the same name is compared: the public attributes MMDetection's class has
and detlab's lacks, the parameters of each method (constructor included) that detlab's does
not accept, and parameters that come in another order (a positional call would shift).

    python tools/dev/compare_mmdet_api.py                 # print the differences
    python tools/dev/compare_mmdet_api.py --write-json    # refresh the test's reference file

``--write-json`` writes MMDetection's side, for every name those packages export, to
tests/data/mmdet_3.3_signatures.json, which tests/test_mmdet_signatures.py checks detlab
against with ``differences`` below.
"""
import argparse
import importlib
import inspect
import json
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
JSON_PATH = REPO_ROOT / 'tests' / 'data' / 'mmdet_3.3_signatures.json'
#: The packages whose API detlab keeps MMDetection's (MMDetection's module paths).
PACKAGES = ('structures', 'structures.bbox', 'structures.mask', 'models.task_modules',
            'models.necks', 'models.backbones', 'models.data_preprocessors', 'models.layers',
            'models.losses', 'evaluation.functional', 'testing')
SKIPPED = ('self', 'cls', 'args', 'kwargs')
#: Members every torch module has; not part of what a class adds.
MODULE_MEMBERS = set(dir(torch.nn.Module)) - {'__init__', 'forward'}


def parameters(func) -> list:
    """Parameter names of ``func`` without self/cls/*args/**kwargs; None if not inspectable."""
    try:
        return [name for name in inspect.signature(func).parameters if name not in SKIPPED]
    except (TypeError, ValueError):
        return None


def describe(obj) -> dict:
    """MMDetection's side of one exported name."""
    if inspect.isclass(obj):
        methods = {}
        own = [a for a in dir(obj) if not a.startswith('_') and a not in MODULE_MEMBERS]
        for name in ['__init__'] + own:
            member = inspect.getattr_static(obj, name, None)
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member):
                params = parameters(member)
                if params is not None:
                    methods[name] = params
        attributes = sorted(own)
        return dict(kind='class', methods=methods, attributes=attributes)
    if inspect.isfunction(obj):
        return dict(kind='function', params=parameters(obj))
    return dict(kind='other')


def mmdet_side() -> dict:
    from mmdet_reference import import_mmdet  # tools/dev is on sys.path when run as a script
    import_mmdet()
    reference = {}
    for package in PACKAGES:
        module = importlib.import_module(f'mmdet.{package}')
        # Some packages list only part of what they export in __all__ (task_modules).
        names = set(getattr(module, '__all__', [])) | {
            n for n in dir(module)
            if not n.startswith('_') and getattr(getattr(module, n), '__module__', '').startswith(
                'mmdet.')}
        reference[f'mmdet.{package}'] = {
            name: describe(getattr(module, name)) for name in sorted(names)
            if hasattr(module, name) and describe(getattr(module, name))['kind'] != 'other'
        }
    return reference


def accepts(func, wanted: list) -> tuple:
    """(missing names, whether the shared names come in another order) for ``func``."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return [], False
    given = [n for n in signature.parameters if n not in SKIPPED]
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    missing = [] if takes_kwargs else [n for n in wanted if n not in given]
    shared = [n for n in wanted if n in given]
    return missing, shared != [n for n in given if n in wanted]


def differences(reference: dict) -> list:
    """Lines naming each difference between MMDetection's side and detlab's."""
    lines = []
    for package, names in reference.items():
        try:
            module = importlib.import_module(package.replace('mmdet', 'detlab', 1))
        except ModuleNotFoundError:
            continue
        for name, ref in names.items():
            obj = getattr(module, name, None)
            if obj is None:
                continue
            where = f'{module.__name__}.{name}'
            if ref['kind'] == 'function' and inspect.isfunction(obj):
                missing, reordered = accepts(obj, ref['params'])
                lines += [f'{where}(): no parameter {m!r}' for m in missing]
                lines += [f'{where}(): parameters in another order'] if reordered else []
            elif ref['kind'] == 'class' and inspect.isclass(obj):
                lines += [f'{where}: no attribute {a!r}' for a in ref['attributes']
                          if not hasattr(obj, a)]
                for method, params in ref['methods'].items():
                    if hasattr(obj, method):
                        missing, reordered = accepts(getattr(obj, method), params)
                        lines += [f'{where}.{method}(): no parameter {m!r}' for m in missing]
                        lines += ([f'{where}.{method}(): parameters in another order']
                                  if reordered else [])
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--write-json', action='store_true',
                        help=f'write MMDetection\'s side to {JSON_PATH.relative_to(REPO_ROOT)}')
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    reference = mmdet_side()
    if args.write_json:
        JSON_PATH.write_text(json.dumps(
            dict(_source='MMDetection 3.3.0, tools/dev/compare_mmdet_api.py', **reference),
            indent=1, sort_keys=True) + '\n')
    lines = differences(reference)
    print('\n'.join(lines) if lines else 'no differences')
    return 0


if __name__ == '__main__':
    sys.exit(main())
