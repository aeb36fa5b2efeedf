"""Run MMDetection 3.3's own unit tests against detlab and print pass/fail counts per file.

Not run by CI, and it fetches nothing: give it a folder holding MMDetection's test files at
their repository paths (``tests/test_structures/test_bbox/test_base_boxes.py`` and so on,
copied from the tests/ folder of MMDetection's 3.3.0 source release, which the wheel lacks).
The folder is copied to a temporary directory, every ``mmdet`` module name in it is
rewritten to ``detlab``, and pytest runs there; the folder itself is never changed.

    python tools/dev/run_mmdet_unit_tests.py /tmp/mmdet_tests
    python tools/dev/run_mmdet_unit_tests.py /tmp/mmdet_tests --target mmdet   # the reference
    python tools/dev/run_mmdet_unit_tests.py /tmp/mmdet_tests --json counts.json
    python tools/dev/run_mmdet_unit_tests.py /tmp/mmdet_tests --compare counts.json
    python tools/dev/run_mmdet_unit_tests.py /tmp/mmdet_tests --detlab-root /tmp/old_checkout

``--target mmdet`` leaves the files as they are and imports MMDetection from its wheel
through ``mmdet_reference.py``, which gives the number of tests MMDetection itself passes
in this environment. ``--compare`` prints the counts of an earlier ``--json`` run beside
the new ones. Extra arguments after ``--`` go to pytest (e.g. ``-- -k fpn -x``).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DEV = Path(__file__).resolve().parent

# ``mmdet`` as a module name: ``from mmdet.x``, ``import mmdet``, ``'mmdet.models'``, but not
# ``mmdet_reference`` or ``open-mmlab/mmdetection``.
MMDET_NAME = re.compile(r'(?<![\w./-])mmdet(?![\w-])')

# Imported by pytest before the tests. Some test files import ``mmcv.ops`` for an
# isinstance check; mmcv-lite lacks the compiled ``mmcv._ext`` that ``mmcv.ops`` loads,
# so a stand-in whose kernels raise is installed first, for either target.
CONFTEST = {
    'detlab': f'''import sys
sys.path.insert(0, {str(TOOLS_DEV)!r})
from mmdet_reference import _install_ext_stand_in
_install_ext_stand_in()
''',
    'mmdet': f'''import sys
sys.path.insert(0, {str(TOOLS_DEV)!r})
from mmdet_reference import import_mmdet
import_mmdet()
''',
}

OUTCOMES = ('passed', 'failed', 'error', 'skipped')


def rewrite_imports(text: str) -> str:
    """Return ``text`` with each ``mmdet`` module name replaced by ``detlab``."""
    return MMDET_NAME.sub('detlab', text)


def prepare_copy(source: Path, dest: Path, target: str) -> None:
    """Copy the test tree to ``dest``, rewriting ``mmdet`` imports unless running MMDetection.

    Every folder gets an ``__init__.py`` so the tests' relative imports (``from .utils
    import ...``) resolve as they do in MMDetection's repository.
    """
    shutil.copytree(source, dest)
    for path in dest.rglob('*'):
        if path.is_dir() and not (path / '__init__.py').exists():
            (path / '__init__.py').write_text('')
        if target == 'detlab' and path.suffix == '.py':
            path.write_text(rewrite_imports(path.read_text()))
    (dest / '__init__.py').unlink(missing_ok=True)
    (dest / 'conftest.py').write_text(CONFTEST[target])


def count_outcomes(junit_xml: Path, root: Path) -> dict:
    """Per test file, the number of tests passed, failed, in error and skipped."""
    counts = defaultdict(lambda: dict.fromkeys(OUTCOMES, 0))
    for case in ET.parse(junit_xml).getroot().iter('testcase'):
        file = case.get('file') or case.get('classname', '').replace('.', '/') + '.py'
        file = os.path.relpath(os.path.join(root, file), root) if file else '?'
        outcome = 'passed'
        for child in case:
            if child.tag in ('failure', 'error', 'skipped'):
                outcome = {'failure': 'failed'}.get(child.tag, child.tag)
        counts[file][outcome] += 1
    return dict(sorted(counts.items()))


def print_table(counts: dict, baseline: dict = None) -> None:
    width = max([len(f) for f in counts] + [10])
    header = f'{"file":<{width}}  passed  failed   error skipped'
    if baseline is not None:
        header += '  passed before'
    print(header)
    totals = dict.fromkeys(OUTCOMES, 0)
    before_total = 0
    for file, row in counts.items():
        line = f'{file:<{width}}' + ''.join(f'{row[o]:>8}' for o in OUTCOMES)
        if baseline is not None:
            before = baseline.get(file, {}).get('passed', 0)
            before_total += before
            line += f'{before:>16}'
        print(line)
        for o in OUTCOMES:
            totals[o] += row[o]
    line = f'{"total":<{width}}' + ''.join(f'{totals[o]:>8}' for o in OUTCOMES)
    if baseline is not None:
        line += f'{before_total:>16}'
    print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     epilog='Arguments after -- go to pytest.')
    parser.add_argument('tests_dir', type=Path,
                        help='folder with MMDetection test files at their repository paths')
    parser.add_argument('--target', choices=('detlab', 'mmdet'), default='detlab',
                        help='run against detlab (imports rewritten) or MMDetection itself')
    parser.add_argument('--detlab-root', type=Path, default=REPO_ROOT,
                        help='the detlab checkout to test (default: this one), e.g. a '
                        '`git worktree` of an older commit for before/after counts')
    parser.add_argument('--json', type=Path, help='write the per-file counts to this file')
    parser.add_argument('--compare', type=Path, help='counts of an earlier --json run')
    parser.add_argument('--keep', action='store_true',
                        help='keep the temporary copy and print where it is')
    argv = sys.argv[1:]
    pytest_args = argv[argv.index('--') + 1:] if '--' in argv else []
    args = parser.parse_args(argv[:argv.index('--')] if '--' in argv else argv)
    if not args.tests_dir.is_dir():
        parser.error(f'tests_dir {str(args.tests_dir)!r} is not a folder; give the folder '
                     'holding the copied MMDetection test files')

    work = Path(tempfile.mkdtemp(prefix='mmdet_unit_tests_'))
    try:
        root = work / 'suite'
        prepare_copy(args.tests_dir, root, args.target)
        junit = work / 'junit.xml'
        env = dict(os.environ)
        if args.target == 'detlab':
            env['PYTHONPATH'] = os.pathsep.join(
                p for p in (str(args.detlab_root.resolve()), env.get('PYTHONPATH')) if p)
        cmd = [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider',
               '--continue-on-collection-errors',
               f'--rootdir={root}', f'--junitxml={junit}', '-o', 'junit_family=xunit1',
               str(root), *pytest_args]
        subprocess.run(cmd, cwd=root, env=env)
        if not junit.exists():
            print('pytest wrote no report; see its output above', file=sys.stderr)
            return 2
        counts = count_outcomes(junit, root)
        baseline = json.loads(args.compare.read_text()) if args.compare else None
        print_table(counts, baseline)
        if args.json:
            args.json.write_text(json.dumps(counts, indent=1))
        if args.keep:
            print(f'copy kept at {root}')
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
